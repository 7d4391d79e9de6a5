"""The transactional outbox: every stored event reaches the bus, in order, and a publisher that
dies anywhere between storing and publishing loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping

import pytest

from contracts import Envelope
from libs.bus import Bus, consume_envelopes
from libs.eventstore import EventStore, NewEvent
from libs.outbox import OutboxRelay
from tests.outbox.conftest import Stack


class Collector:
    """A consumer group's view: every envelope its handler saw."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def __call__(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    async def wait_for(self, count: int, *, within: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.envelopes) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"got {len(self.envelopes)} of {count} events")
            await asyncio.sleep(0.01)


class CrashingBus:
    """A bus whose process 'dies' (raises) after a number of successful publishes."""

    def __init__(self, inner: Bus, *, survive: int) -> None:
        self._inner = inner
        self._left = survive

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self._left == 0:
            raise ConnectionResetError("publisher died")
        self._left -= 1
        await self._inner.publish(topic, value, key=key, headers=headers)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def _events(count: int, namespace: str) -> list[NewEvent]:
    return [
        NewEvent(type="object.created", data={"n": n}, metadata={"namespace_id": namespace})
        for n in range(count)
    ]


async def _consume(stack: Stack) -> tuple[Bus, Collector]:
    bus = stack.make_bus()
    await bus.start()
    await bus.ensure_topic(stack.topic, partitions=2)
    collector = Collector()
    await consume_envelopes(bus, stack.topic, group="checker", handler=collector)
    return bus, collector


async def test_every_stored_event_is_published_once_with_its_position(
    stack: Stack, store: EventStore
) -> None:
    bus, collector = await _consume(stack)
    positions = await store.append("ns_a", _events(5, "ns_a"), expected_version=0)
    positions += await store.append("ns_b", _events(5, "ns_b"), expected_version=0)

    assert await OutboxRelay(store, bus, topic=stack.topic).drain() == 10
    await collector.wait_for(10)

    assert sorted(e.global_position or 0 for e in collector.envelopes) == positions
    assert {e.namespace_id for e in collector.envelopes} == {"ns_a", "ns_b"}


async def test_events_of_one_namespace_arrive_in_stream_order(
    stack: Stack, store: EventStore
) -> None:
    bus, collector = await _consume(stack)
    for _ in range(4):
        await store.append("ns_a", _events(10, "ns_a"), expected_version=None)
    await OutboxRelay(store, bus, topic=stack.topic, batch_size=7).drain()
    await collector.wait_for(40)

    assert [e.version for e in collector.envelopes] == list(range(1, 41))


async def test_a_second_drain_publishes_nothing_again(stack: Stack, store: EventStore) -> None:
    bus, _ = await _consume(stack)
    await store.append("ns_a", _events(3, "ns_a"), expected_version=0)
    relay = OutboxRelay(store, bus, topic=stack.topic)
    await relay.drain()

    assert await relay.drain() == 0


async def test_a_publisher_that_dies_mid_batch_loses_no_event(
    stack: Stack, store: EventStore
) -> None:
    bus, collector = await _consume(stack)
    stored = await store.append("ns_a", _events(20, "ns_a"), expected_version=0)

    dying = OutboxRelay(store, CrashingBus(bus, survive=13), topic=stack.topic, batch_size=8)  # type: ignore[arg-type]
    with pytest.raises(ConnectionResetError):
        await dying.drain()
    await OutboxRelay(store, bus, topic=stack.topic, batch_size=8).drain()
    await collector.wait_for(20)

    assert sorted(e.global_position or 0 for e in collector.envelopes) == stored


async def test_a_relay_started_later_publishes_what_was_stored_meanwhile(
    stack: Stack, store: EventStore
) -> None:
    bus, collector = await _consume(stack)
    relay = OutboxRelay(store, bus, topic=stack.topic, poll_interval=0.02)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    await store.append("ns_a", _events(3, "ns_a"), expected_version=0)
    await collector.wait_for(3)
    await store.append("ns_a", _events(2, "ns_a"), expected_version=3)
    await collector.wait_for(5)
    stop.set()
    await running

    assert [e.version for e in collector.envelopes] == [1, 2, 3, 4, 5]


@pytest.mark.integration
async def test_killing_the_publisher_process_between_store_and_publish_loses_no_event(
    stack: Stack, store: EventStore
) -> None:
    if stack.name != "distributed":
        pytest.skip("a separate process needs a shared database and broker")
    bus, collector = await _consume(stack)
    count = 200
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.outbox.publisher_process",
        stack.store_url, os.environ["OFFSHOOT_KAFKA"], stack.topic, str(count),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    lines = []
    while not (line := (await child.stdout.readline()).decode().strip()).startswith("published 50"):
        assert line, "the publisher exited early"
        lines.append(line)
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert f"stored {count}" in lines

    await OutboxRelay(store, bus, topic=stack.topic).drain()
    await collector.wait_for(count)

    positions = [e.global_position for e in collector.envelopes]
    assert len(positions) == len(set(positions)) == count  # each once: consumers dedupe by event id
    assert {e.event_id for e in collector.envelopes} == {
        e.event_id for e in await store.read_stream("ns_killed")
    }
