"""The bus port's shared suite: every test runs on LocalBus and on KafkaBus (see conftest)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from libs.bus import Bus, Message
from libs.bus.local import partition_for
from libs.errors import InfrastructureError, InvalidInputError

BusFactory = Callable[[], Bus]
TopicFactory = Callable[..., Awaitable[str]]
WaitUntil = Callable[..., Awaitable[None]]


async def test_published_message_reaches_subscriber_with_key_value_and_headers(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    await bus.publish(topic, b"\x00payload\xff", key="ns_1", headers={"a": "1", "b": "two"})

    await wait_until(lambda: len(rec.received) == 1, what="the message")
    (msg,) = rec.received
    assert (msg.topic, msg.key, msg.value) == (topic, "ns_1", b"\x00payload\xff")
    assert dict(msg.headers) == {"a": "1", "b": "two"}
    assert 0 <= msg.partition < 4
    assert msg.offset == 0


async def test_message_without_key_or_headers_is_delivered(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    await bus.publish(topic, b"")

    await wait_until(lambda: len(rec.received) == 1, what="the message")
    assert (rec.received[0].key, rec.received[0].value, dict(rec.received[0].headers)) == (
        None,
        b"",
        {},
    )


async def test_subscribe_before_start_receives_messages(
    make_bus: BusFactory, unique: Any, recorder: Any, wait_until: WaitUntil
) -> None:
    bus = make_bus()
    topic = unique("topic")
    await bus.ensure_topic(topic, partitions=4)
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)
    await bus.start()

    for i in range(5):
        await bus.publish(topic, b"%d" % i, key=f"k{i}")

    await wait_until(lambda: len(rec.received) == 5, what="5 messages")
    assert sorted(rec.values) == [b"0", b"1", b"2", b"3", b"4"]


async def test_same_key_always_lands_on_the_same_partition(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    for i in range(40):
        await bus.publish(topic, b"%d" % i, key=f"key-{i % 8}")

    await wait_until(lambda: len(rec.received) == 40, what="40 messages")
    partitions: dict[str | None, set[int]] = defaultdict(set)
    for m in rec.received:
        partitions[m.key].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys spread over partitions


async def test_every_consumer_group_gets_every_message(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    first, second = recorder(), recorder()
    await bus.subscribe(topic, group="first", handler=first)
    await bus.subscribe(topic, group="second", handler=second)

    sent = [b"m%d" % i for i in range(20)]
    for i, value in enumerate(sent):
        await bus.publish(topic, value, key=f"k{i % 5}")

    await wait_until(
        lambda: len(first.received) == 20 and len(second.received) == 20, what="both groups"
    )
    assert sorted(first.values) == sorted(sent)
    assert sorted(second.values) == sorted(sent)


async def test_members_of_one_group_split_partitions_and_get_each_message_once(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    a, b = recorder(), recorder()
    await bus.subscribe(topic, group="shared", handler=a)
    await bus.subscribe(topic, group="shared", handler=b)

    sent = [b"m%d" % i for i in range(100)]
    for i, value in enumerate(sent):
        await bus.publish(topic, value, key=f"key-{i}")

    await wait_until(lambda: len(a.received) + len(b.received) >= 100, what="100 messages")
    await asyncio.sleep(0.3)  # a duplicate would show up now
    assert sorted(a.values + b.values) == sorted(sent)
    assert a.received and b.received
    assert not {m.partition for m in a.received} & {m.partition for m in b.received}


async def test_messages_with_the_same_key_arrive_in_publish_order(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    keys = [f"stream-{k}" for k in range(5)]
    for i in range(200):
        key = keys[i % 5]
        await bus.publish(topic, f"{key}:{i // 5}".encode(), key=key)

    await wait_until(lambda: len(rec.received) == 200, what="200 messages")
    per_key: dict[str, list[int]] = defaultdict(list)
    for m in rec.received:
        key, seq = m.value.decode().split(":")
        assert key == m.key
        per_key[key].append(int(seq))
    assert per_key == {k: list(range(40)) for k in keys}


async def test_failed_message_is_delivered_again_and_later_messages_are_not_lost(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    deliveries: list[bytes] = []
    handled: list[bytes] = []

    async def flaky(message: Message) -> None:
        deliveries.append(message.value)
        if message.value == b"2" and deliveries.count(b"2") == 1:
            raise RuntimeError("transient failure")
        handled.append(message.value)

    await bus.subscribe(topic, group="g", handler=flaky)
    for i in range(6):
        await bus.publish(topic, b"%d" % i, key="one-key")

    await wait_until(lambda: len(handled) == 6, what="every message handled")
    assert handled == [b"0", b"1", b"2", b"3", b"4", b"5"]
    assert deliveries.count(b"2") == 2


async def test_group_subscribing_late_gets_earlier_messages(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    early = recorder()
    await bus.subscribe(topic, group="early", handler=early)
    for i in range(10):
        await bus.publish(topic, b"%d" % i, key=f"k{i}")
    await wait_until(lambda: len(early.received) == 10, what="the early group")

    late = recorder()
    await bus.subscribe(topic, group="late", handler=late)

    await wait_until(lambda: len(late.received) == 10, what="the late group")
    assert sorted(late.values) == sorted(early.values)


async def test_group_subscribing_to_a_topic_never_published_to_gets_later_messages(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    await bus.publish(topic, b"first", key="k")

    await wait_until(lambda: rec.values == [b"first"], what="the message")


async def test_stop_lets_an_in_flight_handler_finish_and_commits_it(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    started = asyncio.Event()
    finished: list[bytes] = []

    async def slow(message: Message) -> None:
        if message.value == b"slow":
            started.set()
            await asyncio.sleep(0.5)
        finished.append(message.value)

    await bus.subscribe(topic, group="g", handler=slow)
    await bus.publish(topic, b"slow", key="k")
    await asyncio.wait_for(started.wait(), 15)

    await bus.stop()

    assert finished == [b"slow"]
    # Restarted, the group resumes after the committed message: only the new one arrives.
    await bus.start()
    await bus.publish(topic, b"next", key="k")
    await wait_until(lambda: b"next" in finished, what="the message after the restart")
    assert finished == [b"slow", b"next"]


async def test_ensure_topic_is_idempotent(bus: Bus, unique: Any) -> None:
    topic = unique("topic")

    await bus.ensure_topic(topic, partitions=3)
    await bus.ensure_topic(topic, partitions=3)


async def test_publish_refuses_headers_reserved_by_the_transport(
    bus: Bus, new_topic: TopicFactory
) -> None:
    topic = await new_topic()

    with pytest.raises(InvalidInputError, match="reserved"):
        await bus.publish(topic, b"x", headers={"correlation_id": "1"})


async def test_invalid_topic_name_is_refused(bus: Bus) -> None:
    with pytest.raises(InvalidInputError, match="topic name"):
        await bus.publish("no spaces/or slashes", b"x")


async def test_publish_before_start_is_an_infrastructure_error(
    make_bus: BusFactory, unique: Any
) -> None:
    bus = make_bus()

    with pytest.raises(InfrastructureError, match="not started"):
        await bus.publish(unique("topic"), b"x")


async def test_a_key_lands_on_the_partition_of_kafkas_default_partitioner(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    topic = await new_topic(partitions=5)
    rec = recorder()
    await bus.subscribe(topic, group="g", handler=rec)

    keys = ["ns_1", "ns_2", "bkt_abc", "", "ünïcode", "a-much-longer-key-of-37-characters!!"]
    for key in keys:
        await bus.publish(topic, key.encode(), key=key)

    await wait_until(lambda: len(rec.received) == len(keys), what="every key")
    assert {m.key: m.partition for m in rec.received} == {k: partition_for(k, 5) for k in keys}


async def test_a_handler_in_flight_at_stop_can_still_publish(
    bus: Bus, new_topic: TopicFactory, recorder: Any, wait_until: WaitUntil
) -> None:
    source, replies = await new_topic("source"), await new_topic("replies")
    started = asyncio.Event()
    outcome: list[str] = []

    async def forward(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.3)
        try:
            await bus.publish(replies, b"reply to " + message.value, key=message.key)
            outcome.append("published")
        except Exception as e:
            outcome.append(repr(e))
            raise

    await bus.subscribe(source, group="g", handler=forward)
    await bus.publish(source, b"question", key="k")
    await asyncio.wait_for(started.wait(), 15)

    await bus.stop()

    assert outcome == ["published"]
    rec = recorder()
    await bus.subscribe(replies, group="reader", handler=rec)
    await bus.start()
    await wait_until(lambda: rec.values == [b"reply to question"], what="the reply")
