"""What only the Kafka adapter can show: state shared between processes, broker errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from libs.bus import KafkaBus, Message
from libs.errors import InfrastructureError

WaitUntil = Callable[..., Awaitable[None]]


@pytest.mark.integration
async def test_a_new_process_in_the_group_resumes_after_what_the_last_one_handled(
    make_kafka_bus: Callable[[], KafkaBus], unique: Any, wait_until: WaitUntil
) -> None:
    topic, group = unique("topic"), unique("group")
    first_seen: list[bytes] = []
    second_seen: list[bytes] = []

    async def first_handler(message: Message) -> None:
        first_seen.append(message.value)

    async def second_handler(message: Message) -> None:
        second_seen.append(message.value)

    first = make_kafka_bus()
    await first.ensure_topic(topic, partitions=4)
    await first.subscribe(topic, group=group, handler=first_handler)
    await first.start()
    for i in range(10):
        await first.publish(topic, b"%d" % i, key=f"k{i}")
    await wait_until(lambda: len(first_seen) == 10, what="the first process")
    await first.stop()

    second = make_kafka_bus()
    await second.subscribe(topic, group=group, handler=second_handler)
    await second.start()
    await second.publish(topic, b"new", key="k0")

    await wait_until(lambda: b"new" in second_seen, what="the new message")
    await asyncio.sleep(0.2)
    assert second_seen == [b"new"]


async def test_an_unreachable_broker_is_an_infrastructure_error() -> None:
    bus = KafkaBus("127.0.0.1:1")

    with pytest.raises(InfrastructureError, match="cannot start"):
        await bus.start()
    with pytest.raises(InfrastructureError, match="cannot create topic"):
        await bus.ensure_topic("anything", partitions=1)


@pytest.mark.integration
async def test_when_a_member_leaves_the_other_takes_its_partitions_and_nothing_is_lost(
    make_kafka_bus: Callable[[], KafkaBus], unique: Any, wait_until: WaitUntil
) -> None:
    topic, group = unique("topic"), unique("group")
    seen: dict[str, list[bytes]] = {"a": [], "b": []}

    def keeper(name: str) -> Callable[[Message], Awaitable[None]]:
        async def keep(message: Message) -> None:
            seen[name].append(message.value)

        return keep

    a, b = make_kafka_bus(), make_kafka_bus()
    await a.ensure_topic(topic, partitions=4)
    await a.start()
    await b.start()
    await a.subscribe(topic, group=group, handler=keeper("a"))
    await b.subscribe(topic, group=group, handler=keeper("b"))
    for i in range(40):
        await a.publish(topic, b"before-%d" % i, key=f"k{i}")
    await wait_until(lambda: len(seen["a"]) + len(seen["b"]) == 40, what="the first 40")
    assert seen["a"] and seen["b"]

    await b.stop()
    for i in range(40):
        await a.publish(topic, b"after-%d" % i, key=f"k{i}")

    await wait_until(lambda: sum(v.startswith(b"after") for v in seen["a"]) == 40, what="all 40")
    await asyncio.sleep(0.2)
    assert sorted(seen["a"] + seen["b"]) == sorted(
        [b"before-%d" % i for i in range(40)] + [b"after-%d" % i for i in range(40)]
    )
