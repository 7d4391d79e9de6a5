"""``LocalBus``: the in-process adapter of the bus port, with Kafka's semantics kept in memory.

Each topic is a list of partitions, each an append-only log. A key picks its partition with the
same murmur2 hash as Kafka's default partitioner (so a key lands on the same partition number in
both adapters); messages without a key go round-robin. Each consumer group keeps a committed
offset per partition and runs one task per partition that delivers in order, commits after the
handler returns and redelivers (after a short backoff) when it raises. Members of one group share
the partitions. Nothing is durable: a new process starts with empty topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from libs.bus.base import Handler, Message
from libs.errors import InfrastructureError, InvalidInputError

__all__ = [
    "DEFAULT_PARTITIONS",
    "RESERVED_HEADERS",
    "LocalBus",
    "partition_for",
    "validate_publish",
]

log = logging.getLogger("offshoot.bus")

#: Partitions of a topic created implicitly (by a publish or a subscribe), as Kafka's
#: ``num.partitions`` in ``deploy/kafka/server.properties``.
DEFAULT_PARTITIONS = 4

#: Header names the Kafka transport (FastStream) writes itself; both adapters refuse them so code
#: that runs on the embedded bus cannot break on Kafka.
RESERVED_HEADERS = frozenset({"content-type", "correlation_id", "reply_to"})

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def validate_topic(topic: str) -> None:
    """Kafka's rule for topic names, enforced by both adapters."""
    if not _TOPIC_NAME.fullmatch(topic) or topic in {".", ".."}:
        raise InvalidInputError(
            f"invalid topic name {topic!r}: "
            "use 1-249 characters among letters, digits, '.', '_' and '-'"
        )


def validate_publish(topic: str, headers: Mapping[str, str] | None) -> None:
    """The checks every adapter makes before publishing."""
    validate_topic(topic)
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInputError(f"header {name!r}: names and values must be str")
        if name in RESERVED_HEADERS:
            raise InvalidInputError(f"header {name!r} is reserved by the bus transport")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as 32-bit unsigned."""
    m = 0x5BD1E995
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if tail:
        for j in range(len(tail) - 1, -1, -1):
            h ^= tail[j] << (8 * j)
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (UTF-8) among ``partitions``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class _Partition:
    __slots__ = ("appended", "log")

    def __init__(self) -> None:
        self.log: list[Message] = []
        self.appended = asyncio.Event()

    def wake(self) -> None:
        """Wake every task waiting for a message, and arm a fresh event for the next wait."""
        event, self.appended = self.appended, asyncio.Event()
        event.set()


@dataclass(eq=False)
class _Topic:
    name: str
    partitions: list[_Partition]
    next_round_robin: int = 0


@dataclass(eq=False)
class _Group:
    name: str
    topic: _Topic
    members: list[Handler] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)
    tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    def member_for(self, partition: int) -> Handler:
        """Round-robin assignment of partitions to members (stable while membership is)."""
        return self.members[partition % len(self.members)]


class LocalBus:
    """In-memory topics and consumer groups with the Kafka adapter's semantics (see module doc)."""

    messaging_system: ClassVar[str] = "offshoot.local"

    def __init__(
        self,
        *,
        default_partitions: int = DEFAULT_PARTITIONS,
        retry_backoff: float = 0.05,
        max_retry_backoff: float = 1.0,
        graceful_timeout: float = 15.0,
    ) -> None:
        if default_partitions < 1:
            raise InvalidInputError("default_partitions must be at least 1")
        self._default_partitions = default_partitions
        self._retry_backoff = retry_backoff
        self._max_retry_backoff = max_retry_backoff
        self._graceful_timeout = graceful_timeout
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._running = False  # consumer tasks deliver
        self._open = False  # publish accepts messages (until in-flight handlers are done)
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._open:
            return
        self._open = self._running = True
        self._stopping = asyncio.Event()
        for group in self._groups.values():
            self._start_group(group)

    async def stop(self) -> None:
        """Let in-flight handlers finish (up to ``graceful_timeout``), keep committed offsets."""
        if not self._running:
            return
        self._running = False
        if self._stopping is not None:
            self._stopping.set()
        for topic in self._topics.values():
            for part in topic.partitions:
                part.wake()
        tasks = [t for g in self._groups.values() for t in g.tasks.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._graceful_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for group in self._groups.values():
            group.tasks.clear()
        self._open = False

    # -- the port --------------------------------------------------------------------------

    async def ensure_topic(self, topic: str, *, partitions: int) -> None:
        """Create the topic when missing; an existing topic is left as it is."""
        validate_topic(topic)
        if partitions < 1:
            raise InvalidInputError("a topic needs at least one partition")
        existing = self._topics.get(topic)
        if existing is None:
            self._topics[topic] = _Topic(topic, [_Partition() for _ in range(partitions)])
        elif len(existing.partitions) != partitions:
            log.warning(
                "topic %s exists with %d partitions (asked %d); left as it is",
                topic,
                len(existing.partitions),
                partitions,
            )

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        validate_publish(topic, headers)
        if not self._open:
            raise InfrastructureError("the bus is not started")
        t = self._topic(topic)
        if key is None:
            index = t.next_round_robin % len(t.partitions)
            t.next_round_robin += 1
        else:
            index = partition_for(key, len(t.partitions))
        part = t.partitions[index]
        part.log.append(
            Message(
                topic=topic,
                key=key,
                value=bytes(value),
                headers=MappingProxyType(dict(headers or {})),
                partition=index,
                offset=len(part.log),
            )
        )
        part.wake()

    async def subscribe(self, topic: str, *, group: str, handler: Handler) -> None:
        validate_topic(topic)
        if not group:
            raise InvalidInputError("a consumer group name is required")
        g = self._groups.get((topic, group))
        if g is None:
            t = self._topic(topic)
            # A new group starts from the oldest retained message (auto.offset.reset=earliest).
            g = _Group(group, t, committed=dict.fromkeys(range(len(t.partitions)), 0))
            self._groups[(topic, group)] = g
        g.members.append(handler)
        if self._running:
            self._start_group(g)

    # -- internals -------------------------------------------------------------------------

    def _topic(self, topic: str) -> _Topic:
        t = self._topics.get(topic)
        if t is None:
            t = self._topics[topic] = _Topic(
                topic, [_Partition() for _ in range(self._default_partitions)]
            )
        return t

    def _start_group(self, group: _Group) -> None:
        for index in range(len(group.topic.partitions)):
            if index not in group.tasks:
                group.tasks[index] = asyncio.create_task(
                    self._deliver(group, index),
                    name=f"localbus:{group.topic.name}:{group.name}:{index}",
                )

    async def _deliver(self, group: _Group, index: int) -> None:
        """Deliver one partition to one group, in order, committing after each handler returns."""
        part = group.topic.partitions[index]
        failures = 0
        while self._running:
            offset = group.committed[index]
            if offset >= len(part.log):
                await part.appended.wait()
                continue
            message = part.log[offset]
            try:
                await group.member_for(index)(message)
            except Exception:
                failures += 1
                log.warning(
                    "handler of group %s failed on %s[%d]@%d (attempt %d); redelivering",
                    group.name,
                    group.topic.name,
                    index,
                    offset,
                    failures,
                    exc_info=True,
                )
                await self._backoff(failures)
                continue
            failures = 0
            group.committed[index] = offset + 1

    async def _backoff(self, failures: int) -> None:
        delay = min(self._retry_backoff * 2 ** (failures - 1), self._max_retry_backoff)
        if self._stopping is None:  # pragma: no cover - only set while running
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
