"""The envelope layer over both adapters: parsing, dead letters, dedupe, retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contracts.envelope import DeadLetter, Envelope
from libs.bus import (
    Bus,
    KafkaBus,
    LocalBus,
    LruDeduplicator,
    Message,
    consume_envelopes,
    dlq_topic,
    open_bus,
    publish_envelope,
)
from libs.errors import InvalidInputError

TopicFactory = Callable[..., Awaitable[str]]
WaitUntil = Callable[..., Awaitable[None]]


def envelope(n: int = 1, **changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "type": "BucketCreated",
        "stream_id": "bkt_1",
        "version": n,
        "namespace_id": "ns_1",
        "data": {"n": n},
    }
    fields.update(changes)
    return Envelope(**fields)


async def dead_letters(bus: Bus, topic: str) -> list[DeadLetter]:
    """Subscribes to ``<topic>.dlq`` and returns the list its letters will be appended to."""
    letters: list[DeadLetter] = []

    async def keep(message: Message) -> None:
        letters.append(DeadLetter.model_validate_json(message.value))

    await bus.ensure_topic(dlq_topic(topic), partitions=1)
    await bus.subscribe(dlq_topic(topic), group="dlq-reader", handler=keep)
    return letters


async def test_published_envelope_reaches_the_handler_keyed_by_namespace(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    raw: list[Message] = []
    handled: list[Envelope] = []

    async def handle(e: Envelope) -> None:
        handled.append(e)

    async def keep(message: Message) -> None:
        raw.append(message)

    await consume_envelopes(bus, topic, group="svc", handler=handle)
    await bus.subscribe(topic, group="raw", handler=keep)
    sent = await publish_envelope(bus, topic, envelope(global_position=7))

    await wait_until(lambda: handled and raw, what="the envelope")
    assert handled == [sent]
    assert raw[0].key == "ns_1"


async def test_envelope_without_namespace_is_keyed_by_stream(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    raw: list[Message] = []

    async def keep(message: Message) -> None:
        raw.append(message)

    await bus.subscribe(topic, group="raw", handler=keep)
    await publish_envelope(bus, topic, envelope(namespace_id=None, stream_id="ns_9"))

    await wait_until(lambda: raw, what="the message")
    assert raw[0].key == "ns_9"


async def test_malformed_bytes_are_dead_lettered_and_the_next_envelope_is_handled(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    letters = await dead_letters(bus, topic)
    handled: list[Envelope] = []

    async def handle(e: Envelope) -> None:
        handled.append(e)

    await consume_envelopes(bus, topic, group="svc", handler=handle)
    await bus.publish(topic, b"{not json", key="ns_1")
    good = await publish_envelope(bus, topic, envelope())

    await wait_until(lambda: letters and handled, what="a dead letter and the good envelope")
    (letter,) = letters
    assert letter.source_topic == topic
    assert letter.consumer_group == "svc"
    assert letter.value == "{not json"
    assert letter.key == "ns_1"
    assert "invalid envelope" in letter.reason
    assert "json" in letter.reason.lower()
    assert handled == [good]


async def test_schema_violation_is_dead_lettered_with_the_validation_error(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    letters = await dead_letters(bus, topic)

    async def handle(e: Envelope) -> None:
        raise AssertionError("a malformed envelope reached the handler")

    await consume_envelopes(bus, topic, group="svc", handler=handle)
    await bus.publish(topic, b'{"event_id": "not-a-uuid", "type": "X", "version": 0}')

    await wait_until(lambda: letters, what="the dead letter")
    reason = letters[0].reason
    assert "event_id" in reason
    assert "stream_id" in reason
    assert len(reason) <= 500


async def test_the_same_event_published_twice_is_handled_once(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    handled: list[uuid.UUID] = []

    async def handle(e: Envelope) -> None:
        handled.append(e.event_id)

    await consume_envelopes(bus, topic, group="svc", handler=handle)
    twice = envelope(1)
    after = envelope(2)
    await publish_envelope(bus, topic, twice)
    await publish_envelope(bus, topic, twice)
    await publish_envelope(bus, topic, after)

    await wait_until(lambda: after.event_id in handled, what="the last envelope")
    assert handled == [twice.event_id, after.event_id]


async def test_the_same_event_on_two_partitions_is_handled_once(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    handled: list[uuid.UUID] = []

    async def handle(e: Envelope) -> None:
        await asyncio.sleep(0.05)
        handled.append(e.event_id)

    await consume_envelopes(bus, topic, group="svc", handler=handle)
    same = envelope(1)
    keys = ["a", "b", "c", "d", "e", "f"]  # spread over partitions
    for key in keys:
        await publish_envelope(bus, topic, same, key=key)
    marker = envelope(2)
    for key in keys:
        await publish_envelope(bus, topic, marker, key=key)

    await wait_until(lambda: marker.event_id in handled, what="the marker")
    await asyncio.sleep(0.3)
    assert sorted(map(str, handled)) == sorted([str(same.event_id), str(marker.event_id)])


async def test_a_handler_failing_fewer_than_max_attempts_times_is_retried_in_place(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    letters = await dead_letters(bus, topic)
    attempts: list[int] = []

    async def handle(e: Envelope) -> None:
        attempts.append(e.version)
        if len(attempts) < 3:
            raise RuntimeError("database is restarting")

    await consume_envelopes(bus, topic, group="svc", handler=handle, max_attempts=3)
    await publish_envelope(bus, topic, envelope(1))

    await wait_until(lambda: len(attempts) == 3, what="three attempts")
    await asyncio.sleep(0.2)
    assert attempts == [1, 1, 1]
    assert letters == []


async def test_a_handler_failing_max_attempts_times_is_dead_lettered_and_consumption_continues(
    bus: Bus, new_topic: TopicFactory, wait_until: WaitUntil
) -> None:
    topic = await new_topic()
    letters = await dead_letters(bus, topic)
    attempts: list[int] = []
    handled: list[int] = []

    async def handle(e: Envelope) -> None:
        attempts.append(e.version)
        if e.version == 1:
            raise ValueError(f"cannot apply version {e.version}")
        handled.append(e.version)

    await consume_envelopes(bus, topic, group="svc", handler=handle, max_attempts=3)
    poison = await publish_envelope(bus, topic, envelope(1))
    await publish_envelope(bus, topic, envelope(2))

    await wait_until(lambda: letters and handled, what="the dead letter and the next envelope")
    assert attempts == [1, 1, 1, 2]
    assert handled == [2]
    (letter,) = letters
    assert letter.reason == "ValueError: cannot apply version 1"
    assert Envelope.model_validate_json(letter.value) == poison


async def test_lru_deduplicator_forgets_the_least_recently_seen_ids() -> None:
    dedupe = LruDeduplicator(capacity=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await dedupe.remember(a)
    await dedupe.remember(b)
    await dedupe.seen(a)  # a is now the most recent
    await dedupe.remember(c)  # evicts b

    assert [await dedupe.seen(a), await dedupe.seen(b), await dedupe.seen(c)] == [True, False, True]


def test_open_bus_picks_the_adapter_from_the_url() -> None:
    assert isinstance(open_bus("memory://"), LocalBus)
    kafka = open_bus("kafka://127.0.0.1:9092,127.0.0.1:9093?replication_factor=3")
    assert isinstance(kafka, KafkaBus)
    for bad in ("redis://x", "kafka://", "kafka://h:1?linger=5", "memory://host"):
        with pytest.raises(InvalidInputError):
            open_bus(bad)
