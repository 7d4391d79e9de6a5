"""The transactional outbox: stored events reach the bus only after they commit, and all of them do.

The event store *is* the outbox. Appends commit in global-position order (the store serialises
them), so a relay that publishes ``read_all`` in order and checkpoints the last published position
never skips an event. A crash before the checkpoint republishes a tail of events: delivery is
at-least-once and consumers dedupe by ``event_id``. Nothing is published that was not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from opentelemetry import context as otel_context

from contracts import topics
from contracts.envelope import Envelope
from libs.bus import Bus, publish_envelope
from libs.eventstore import EventStore, RecordedEvent, wait_for_append_or_stop
from libs.telemetry import extract_context

log = logging.getLogger(__name__)


def envelope_of(event: RecordedEvent) -> Envelope:
    """The wire form of a stored event; namespace, causation and trace come from its metadata."""
    metadata = event.metadata
    return Envelope(
        event_id=event.event_id,
        type=event.type,
        stream_id=event.stream_id,
        version=event.stream_version,
        global_position=event.global_position,
        namespace_id=metadata.get("namespace_id"),
        occurred_at=event.recorded_at,
        causation_id=metadata.get("causation_id"),
        correlation_id=metadata.get("correlation_id"),
        trace_context=metadata.get("trace_context", {}),
        data=event.data,
    )


class OutboxRelay:
    """Publishes every stored event to ``topic`` in global order, resuming from a durable checkpoint."""

    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        topic: str = topics.EVENTS,
        batch_size: int = 500,
        poll_interval: float = 0.05,
        idle_timeout: float = 1.0,
    ) -> None:
        """``poll_interval``: the first retry delay after a failure. ``idle_timeout``: how long
        a quiet relay waits before looking again; appends wake it sooner (the store's own, at
        once; another process's, at the store's poll interval)."""
        self._store = store
        self._bus = bus
        self._topic = topic
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._idle_timeout = idle_timeout
        self.checkpoint_name = f"outbox:{topic}"

    async def drain(self) -> int:
        """Publish everything stored after the checkpoint, up to the head; return how many."""
        published = 0
        position = await self._store.load_checkpoint(self.checkpoint_name)
        while True:
            events = await self._store.read_all(from_position=position, limit=self._batch_size)
            if not events:
                return published
            for event in events:
                await self._publish(event)
            position = events[-1].global_position
            await self._store.save_checkpoint(self.checkpoint_name, position)
            published += len(events)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain, then wait for new appends, until ``stop`` is set (the in-flight batch finishes).

        A failing store or bus (a database or broker restart) is retried with backoff rather
        than ending the relay: a relay that died would leave every later event unpublished
        until the process restarts. Nothing is lost either way (the checkpoint only moves
        after a publish), so retrying is always safe."""
        delay = self._poll_interval
        while not stop.is_set():
            try:
                await self.drain()
                head = await self._store.load_checkpoint(self.checkpoint_name)
                await wait_for_append_or_stop(
                    self._store, after_position=head, timeout=self._idle_timeout, stop=stop
                )
                delay = self._poll_interval
            except Exception:
                log.warning("outbox relay: drain failed; retrying in %.2f s", delay, exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)
        try:
            await self.drain()
        except Exception:  # the next relay on this store publishes what is left
            log.warning("outbox relay: final drain failed", exc_info=True)

    async def _publish(self, event: RecordedEvent) -> None:
        envelope = envelope_of(event)
        # The producer span continues the trace of the request that stored the event.
        token = otel_context.attach(extract_context(envelope.trace_context))
        try:
            await publish_envelope(self._bus, self._topic, envelope)
        finally:
            otel_context.detach(token)
