"""``PrefixedBus``: one Kafka cluster, several isolated deployments.

Every topic and consumer group name gets ``prefix`` in front on the way to the adapter and loses
it on the way back (``Message.topic``), so the services keep using the contract's topic names
(``offshoot.events``) while two deployments (or two test runs) on one broker never share a
partition or a group's offsets. ``open_bus("kafka://host:9092?prefix=staging.")`` builds it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from libs.bus.base import Bus, Handler, Message
from libs.errors import InvalidInputError

__all__ = ["PrefixedBus"]


class PrefixedBus:
    """The bus port over ``inner`` with every topic and group name prefixed (see module doc)."""

    def __init__(self, inner: Bus, prefix: str) -> None:
        if not prefix or not all(c.isalnum() or c in "._-" for c in prefix):
            raise InvalidInputError(f"a bus prefix is letters, digits, '.', '_' or '-': {prefix!r}")
        self.inner = inner
        self.prefix = prefix
        self.messaging_system = str(getattr(inner, "messaging_system", "unknown"))

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def ensure_topic(self, topic: str, *, partitions: int) -> None:
        await self.inner.ensure_topic(self.prefix + topic, partitions=partitions)

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        await self.inner.publish(self.prefix + topic, value, key=key, headers=headers)

    async def subscribe(self, topic: str, *, group: str, handler: Handler) -> None:
        prefix = self.prefix

        async def unprefixed(message: Message) -> None:
            name = message.topic.removeprefix(prefix)
            await handler(dataclasses.replace(message, topic=name))

        await self.inner.subscribe(prefix + topic, group=prefix + group, handler=unprefixed)
