"""Envelopes over the bus port, shared by every adapter: parse, dedupe, trace, retry, dead-letter.

``publish_envelope`` serialises an ``Envelope`` under a PRODUCER span and puts the W3C trace
context in the message headers (and in ``envelope.trace_context``). ``consume_envelopes``
subscribes a handler of envelopes: each message runs under a CONSUMER span whose parent is that
producer span; malformed messages and envelopes whose handler keeps failing go to
``<topic>.dlq`` as a ``DeadLetter`` and consumption goes on; an ``event_id`` already handled is
skipped (delivery is at-least-once, handlers see each event once per deduplicator).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from contracts.envelope import DeadLetter, Envelope
from libs import telemetry
from libs.bus.base import Bus, Message
from libs.errors import InvalidInputError

__all__ = [
    "DLQ_SUFFIX",
    "Deduplicator",
    "EnvelopeConsumer",
    "EnvelopeHandler",
    "LruDeduplicator",
    "consume_envelopes",
    "dlq_topic",
    "publish_envelope",
]

log = logging.getLogger("offshoot.bus")

EnvelopeHandler = Callable[[Envelope], Awaitable[None]]

DLQ_SUFFIX = ".dlq"
_MAX_REASON = 500


def dlq_topic(topic: str) -> str:
    """Where dead letters of ``topic`` go."""
    return topic + DLQ_SUFFIX


def _system(bus: Bus) -> str:
    return str(getattr(bus, "messaging_system", "unknown"))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


# -- publishing ------------------------------------------------------------------------------


async def publish_envelope(
    bus: Bus, topic: str, envelope: Envelope, *, key: str | None = None
) -> Envelope:
    """Publish ``envelope`` on ``topic`` under a PRODUCER span; return it as sent.

    The key defaults to the namespace (else the stream), which keeps a namespace's events in
    order. The span's parent is the trace context the envelope already carries (e.g. the request
    that recorded the event, relayed by the outbox) or else the current span.
    """
    key = key if key is not None else (envelope.namespace_id or envelope.stream_id)
    parent = telemetry.context_from_carrier(envelope.trace_context)
    with telemetry.producer_span(
        topic,
        system=_system(bus),
        parent=parent,
        attributes={
            "messaging.message.id": str(envelope.event_id),
            "messaging.kafka.message.key": key,
            "offshoot.event.type": envelope.type,
        },
    ):
        headers = telemetry.inject_headers()
        sent = envelope.model_copy(update={"trace_context": dict(headers)})
        await bus.publish(topic, sent.model_dump_json().encode(), key=key, headers=headers)
    return sent


# -- deduplication ---------------------------------------------------------------------------


class Deduplicator(Protocol):
    """Remembers the event ids a consumer has handled. ``remember`` is called only after the
    handler succeeded, so a crash in between means the event is handled again (at-least-once)."""

    async def seen(self, event_id: uuid.UUID) -> bool: ...

    async def remember(self, event_id: uuid.UUID) -> None: ...


class LruDeduplicator:
    """In-memory, bounded: remembers the ``capacity`` most recently handled event ids."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise InvalidInputError("capacity must be at least 1")
        self._capacity = capacity
        self._ids: OrderedDict[uuid.UUID, None] = OrderedDict()

    async def seen(self, event_id: uuid.UUID) -> bool:
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        return False

    async def remember(self, event_id: uuid.UUID) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


# -- consuming -------------------------------------------------------------------------------


class Rejected(Exception):
    """Raised by a handler for a message that can never succeed (bad input, bad credentials):
    it is dead-lettered at once with this reason, without retries."""


class EnvelopeConsumer:
    """The port ``Handler`` that turns messages into envelope handler calls (see module doc)."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        *,
        group: str,
        handler: EnvelopeHandler,
        dedupe: Deduplicator | None = None,
        max_attempts: int = 3,
        retry_backoff: float = 0.05,
    ) -> None:
        if max_attempts < 1:
            raise InvalidInputError("max_attempts must be at least 1")
        self.bus = bus
        self.topic = topic
        self.group = group
        self.handler = handler
        self.dedupe: Deduplicator = dedupe if dedupe is not None else LruDeduplicator()
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        # Two partitions may carry the same event (published twice under different keys): the
        # second waits for the first instead of running the handler concurrently.
        self._in_flight: dict[uuid.UUID, _Slot] = {}

    async def __call__(self, message: Message) -> None:
        attributes: dict[str, str | int] = {
            "messaging.consumer.group.name": self.group,
            "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.offset": message.offset,
        }
        if message.key is not None:
            attributes["messaging.kafka.message.key"] = message.key
        with telemetry.consumer_span(
            message.topic, system=_system(self.bus), headers=message.headers, attributes=attributes
        ) as span:
            try:
                envelope = Envelope.model_validate_json(message.value)
            except ValidationError as e:
                reason = _short(f"invalid envelope: {_describe(e)}")
                span.set_status(Status(StatusCode.ERROR, reason))
                await self._dead_letter(message, reason)
                return
            span.set_attribute("messaging.message.id", str(envelope.event_id))
            span.set_attribute("offshoot.event.type", envelope.type)
            async with self._exclusive(envelope.event_id):
                if await self.dedupe.seen(envelope.event_id):
                    span.set_attribute("offshoot.duplicate", True)
                    return
                if await self._handle(message, envelope, span):
                    await self.dedupe.remember(envelope.event_id)

    async def _handle(self, message: Message, envelope: Envelope, span: Span) -> bool:
        """Run the handler up to ``max_attempts`` times; dead-letter and return False if it never
        succeeds."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.handler(envelope)
                return True
            except Rejected as e:
                span.set_status(Status(StatusCode.ERROR, str(e)))
                await self._dead_letter(message, _short(f"rejected: {e}"))
                return True  # handled: a redelivery would be rejected again
            except Exception as e:
                span.record_exception(e)
                if attempt == self.max_attempts:
                    reason = _short(f"{type(e).__name__}: {e}")
                    span.set_status(Status(StatusCode.ERROR, reason))
                    log.error(
                        "group %s gave up on event %s (%s) after %d attempts: %s",
                        self.group,
                        envelope.event_id,
                        envelope.type,
                        attempt,
                        reason,
                    )
                    await self._dead_letter(message, reason)
                    return False
                log.warning(
                    "group %s: handler failed on event %s (attempt %d/%d): %s",
                    self.group,
                    envelope.event_id,
                    attempt,
                    self.max_attempts,
                    e,
                )
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
        return False  # pragma: no cover - the loop always returns

    async def _dead_letter(self, message: Message, reason: str) -> None:
        letter = DeadLetter(
            source_topic=message.topic,
            consumer_group=self.group,
            reason=reason,
            key=message.key,
            partition=message.partition,
            offset=message.offset,
            value=message.value.decode("utf-8", "replace"),
        )
        # The dead letter continues the consumer's trace; if publishing fails, the error reaches
        # the bus, which delivers the message again.
        await self.bus.publish(
            dlq_topic(message.topic),
            letter.model_dump_json().encode(),
            key=message.key,
            headers=telemetry.inject_headers(message.headers),
        )

    @asynccontextmanager
    async def _exclusive(self, event_id: uuid.UUID) -> AsyncIterator[None]:
        slot = self._in_flight.get(event_id)
        if slot is None:
            slot = self._in_flight[event_id] = _Slot()
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._in_flight[event_id]


class _Slot:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _describe(error: ValidationError) -> str:
    """A one-line summary of a validation error: the first few fields and what is wrong."""
    items = error.errors(include_url=False)
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}" for item in items[:3]
    ]
    if len(items) > 3:
        parts.append(f"and {len(items) - 3} more")
    return "; ".join(parts)


async def consume_envelopes(
    bus: Bus,
    topic: str,
    *,
    group: str,
    handler: EnvelopeHandler,
    dedupe: Deduplicator | None = None,
    max_attempts: int = 3,
    retry_backoff: float = 0.05,
    dlq_partitions: int = 1,
) -> EnvelopeConsumer:
    """Subscribe ``handler`` to the envelopes of ``topic`` as a member of ``group``.

    Makes sure ``<topic>.dlq`` exists first, so dead letters do not rely on auto-created topics.
    """
    consumer = EnvelopeConsumer(
        bus,
        topic,
        group=group,
        handler=handler,
        dedupe=dedupe,
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
    )
    await bus.ensure_topic(dlq_topic(topic), partitions=dlq_partitions)
    await bus.subscribe(topic, group=group, handler=consumer)
    return consumer
