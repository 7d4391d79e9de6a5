"""The bus port: topics of keyed byte messages, consumer groups, at-least-once, ordered per key.

Adapters: ``LocalBus`` (in-process, embedded default) and ``KafkaBus`` (FastStream + aiokafka).
Both run the one shared suite in ``tests/bus/``. Envelope parsing, dedupe, tracing and dead
letters sit above this port (``libs/bus/consumer.py``), so both adapters share them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered message. ``partition``/``offset`` locate it; the same key always maps to the
    same partition, which is what keeps per-key order."""

    topic: str
    key: str | None
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = 0


Handler = Callable[[Message], Awaitable[None]]


class Bus(Protocol):
    """Publish/subscribe with Kafka's semantics.

    - Every consumer group receives every message of a topic at least once; members of one group
      share the partitions. A group that subscribes late starts from the oldest retained message.
    - Messages with the same key are delivered to a group in publish order.
    - A message is committed only after its handler returns; if the handler raises, the message is
      delivered again (the envelope consumer layer turns poison messages into dead letters first).
    """

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Finish in-flight handlers, commit what they finished, release connections."""
        ...

    async def ensure_topic(self, topic: str, *, partitions: int) -> None:
        """Create the topic when missing (idempotent)."""
        ...

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Return once the message is durably accepted (Kafka: acked by the broker)."""
        ...

    async def subscribe(self, topic: str, *, group: str, handler: Handler) -> None:
        """Add ``handler`` as a member of ``group`` on ``topic``; works before or after start."""
        ...
