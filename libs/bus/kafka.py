"""``KafkaBus``: the bus port on Apache Kafka, through a FastStream ``KafkaBroker`` (aiokafka).

- publish: ``acks=all`` with an idempotent producer; returns once the broker acknowledged.
- subscribe: one aiokafka consumer per member, ``auto_offset_reset=earliest``, FastStream's
  ``AckPolicy.MANUAL``: a message's offset is committed only after its handler returned (in the
  background, coalesced; see ``_Member``); when the handler raises, the consumer seeks back to
  the message (nack) and it is delivered again after a short backoff. Handlers run one at a time
  per member, which keeps per-key order.
- ``subscribe`` and ``start`` return once the member has joined its group and received its
  partitions, so a message published afterwards is seen by the group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from libs.bus.base import Handler, Message
from libs.bus.local import RESERVED_HEADERS, validate_publish, validate_topic
from libs.errors import InfrastructureError, InvalidInputError

__all__ = ["KafkaBus"]

log = logging.getLogger("offshoot.bus")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what a member finished before its partitions go, and tells when it has joined."""

    def __init__(self, member: _Member) -> None:
        self.member = member
        self.joined = asyncio.Event()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.member.flush()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined.set()


class _Member:
    """One ``subscribe`` call: a FastStream subscriber wrapping the port handler.

    Handled offsets are committed in the background, coalesced (one commit covers every message
    handled meanwhile), so a commit round trip never delays the next message. Commits are of
    explicit offsets (the handled message + 1), never of the consumer's position, so they cannot
    cover a message still in the handler. They are flushed before a rebalance takes partitions
    away and when the bus stops.
    """

    def __init__(self, bus: KafkaBus, topic: str, group: str, handler: Handler) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.handler = handler
        self.listener = _Listener(self)
        self.failures: dict[tuple[int, int], int] = {}
        self._consumer: Any = None
        self._pending: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None

    async def on_message(self, message: KafkaMessage) -> None:
        """Run the handler; commit on success, seek back and back off on failure. Never raises:
        with the manual ack policy an escaping error would leave the message neither committed
        nor sought back."""
        record: Any = message.raw_message  # a ConsumerRecord: this subscriber is not batched
        where = (record.partition, record.offset)
        try:
            await self.handler(_to_message(record))
        except Exception:
            failures = self.failures[where] = self.failures.get(where, 0) + 1
            log.warning(
                "handler of group %s failed on %s[%d]@%d (attempt %d); redelivering",
                self.group,
                record.topic,
                record.partition,
                record.offset,
                failures,
                exc_info=True,
            )
            try:
                await message.nack()  # seek back to this message
            except Exception:  # e.g. the partition was revoked meanwhile: its new owner re-reads
                log.warning("could not seek back %s[%d]", record.topic, record.partition)
            await asyncio.sleep(self.bus.backoff(failures))
            return
        self.failures.pop(where, None)
        self._consumer = message.consumer
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self.bus.stopping:
            await self.flush()
        elif self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())

    async def _commit_pending(self) -> None:
        while self._pending:
            await self.flush()

    async def flush(self) -> None:
        """Commit every offset handled so far (waits for a commit already in flight)."""
        async with self._commit_lock:
            if not self._pending:
                return
            offsets, self._pending = self._pending, {}
            try:
                await self._consumer.commit(offsets)
            except Exception:  # a rebalance took the partition: its new owner gets it again
                log.warning(
                    "group %s: commit of %s failed; those messages may be delivered again",
                    self.group,
                    {f"{tp.topic}[{tp.partition}]": offset for tp, offset in offsets.items()},
                    exc_info=True,
                )

    async def drain(self) -> None:
        """Wait for the background committer, then commit what is left."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
            self._committer = None
        await self.flush()


def _to_message(record: Any) -> Message:
    key: bytes | None = record.key
    return Message(
        topic=record.topic,
        key=None if key is None else key.decode("utf-8", "replace"),
        value=record.value or b"",
        headers=MappingProxyType(
            {
                name: raw.decode("utf-8", "replace")
                for name, raw in record.headers
                if name not in RESERVED_HEADERS
            }
        ),
        partition=record.partition,
        offset=record.offset,
    )


class KafkaBus:
    """The bus port on Kafka (see module doc). Timeouts are Kafka's; tests lower them."""

    messaging_system: ClassVar[str] = "kafka"

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "offshoot",
        replication_factor: int = 1,
        linger_ms: int = 0,
        fetch_max_wait_ms: int = 100,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        retry_backoff: float = 0.05,
        max_retry_backoff: float = 1.0,
        join_timeout: float = 30.0,
        graceful_timeout: float = 15.0,
    ) -> None:
        self._servers = (
            bootstrap_servers if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
        )
        self._client_id = client_id
        self._replication_factor = replication_factor
        self._consumer_options: dict[str, Any] = {
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
        }
        self._retry_backoff = retry_backoff
        self._max_retry_backoff = max_retry_backoff
        self._join_timeout = join_timeout
        self._broker = KafkaBroker(
            self._servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            graceful_timeout=graceful_timeout,
            logger=logging.getLogger("offshoot.bus.faststream"),
        )
        self._members: list[_Member] = []
        self._started = False
        self.stopping = False

    def backoff(self, failures: int) -> float:
        """Seconds to wait before the ``failures``-th redelivery of a message."""
        return float(min(self._retry_backoff * 2 ** (failures - 1), self._max_retry_backoff))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, start every member subscribed so far and wait until each has joined."""
        if self._started:
            return
        try:
            await self._broker.start()
        except (KafkaError, OSError) as e:
            await self._broker.stop()
            raise InfrastructureError(f"cannot start the Kafka bus on {self._servers}: {e}") from e
        self._started = True
        await self._wait_joined(self._members)

    async def stop(self) -> None:
        """Stop consuming, let in-flight handlers finish and commit (up to ``graceful_timeout``),
        leave the groups and close the producer."""
        if not self._started or self.stopping:
            return
        # Handlers still running may publish (e.g. dead letters) until the broker has stopped;
        # from now on those that finish commit before returning.
        self.stopping = True
        try:
            for member in self._members:
                await member.drain()
            await self._broker.stop()
        finally:
            self._started = False
            self.stopping = False
        for member in self._members:  # a restart waits for a fresh join
            member.listener.joined.clear()

    @property
    def subscriptions(self) -> list[tuple[str, str]]:
        """``(topic, group)`` of every subscription so far, as Kafka names them (for lag)."""
        return list(dict.fromkeys((m.topic, m.group) for m in self._members))

    # -- the port --------------------------------------------------------------------------

    async def ensure_topic(self, topic: str, *, partitions: int) -> None:
        """Create the topic when missing (an existing one is left as it is) and wait until every
        partition has a leader."""
        validate_topic(topic)
        if partitions < 1:
            raise InvalidInputError("a topic needs at least one partition")
        admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=self._client_id)
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(topic, partitions, self._replication_factor)]
            )
            for entry in response.to_object()["topic_errors"]:
                code = entry["error_code"]
                if code and for_code(code) is not TopicAlreadyExistsError:
                    raise InfrastructureError(
                        f"cannot create topic {topic!r}: {entry.get('error_message') or code}"
                    )
            existing = await self._wait_leaders(admin, topic)
            if existing != partitions:
                log.warning(
                    "topic %s exists with %d partitions (asked %d); left as it is",
                    topic,
                    existing,
                    partitions,
                )
        except KafkaError as e:
            raise InfrastructureError(f"cannot create topic {topic!r}: {e}") from e
        finally:
            await admin.close()

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        validate_publish(topic, headers)
        if not self._started:
            raise InfrastructureError("the bus is not started")
        try:
            await self._broker.publish(
                bytes(value),
                topic,
                key=None if key is None else key.encode(),
                headers=dict(headers or {}),
            )
        except KafkaError as e:
            raise InfrastructureError(f"cannot publish to {topic!r}: {e}") from e

    async def subscribe(self, topic: str, *, group: str, handler: Handler) -> None:
        validate_topic(topic)
        if not group:
            raise InvalidInputError("a consumer group name is required")
        member = _Member(self, topic, group, handler)
        subscriber = self._broker.subscriber(
            # declare=False: never let FastStream create the topic (with its 1-partition default)
            Topic(topic, declare=False),
            group_id=group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            listener=member.listener,
            **self._consumer_options,
        )
        subscriber(member.on_message)
        self._members.append(member)
        if self._started and not self.stopping:
            try:
                await subscriber.start()
            except KafkaError as e:
                raise InfrastructureError(f"cannot subscribe to {topic!r}: {e}") from e
            await self._wait_joined([member])

    # -- internals -------------------------------------------------------------------------

    async def _wait_joined(self, members: Sequence[_Member]) -> None:
        try:
            async with asyncio.timeout(self._join_timeout):
                for member in members:
                    await member.listener.joined.wait()
        except TimeoutError:
            missing = [f"{m.group}@{m.topic}" for m in members if not m.listener.joined.is_set()]
            raise InfrastructureError(
                f"consumer group member(s) {missing} did not join within {self._join_timeout} s"
            ) from None

    async def _wait_leaders(self, admin: AIOKafkaAdminClient, topic: str) -> int:
        """Poll metadata until every partition of ``topic`` has a leader; return their count."""
        deadline = time.monotonic() + self._join_timeout
        while True:
            (meta,) = await admin.describe_topics([topic])
            parts = meta.get("partitions") or []
            if meta["error_code"] == 0 and parts and all(p["leader"] >= 0 for p in parts):
                return len(parts)
            if time.monotonic() > deadline:
                raise InfrastructureError(f"topic {topic!r} has no leader for every partition")
            await asyncio.sleep(0.05)
