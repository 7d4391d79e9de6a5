"""Projections: read models beside the events, exactly-once in effect, rebuildable from 0."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from libs.eventstore import EventStore, ProjectionRunner, RecordedEvent, Transaction

from .helpers import new_events


class EventCounts:
    """Counts events per type into a table; optionally fails on one type (after writing)."""

    name = "event_counts"

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    async def setup(self, tx: Transaction) -> None:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS event_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL)"
        )

    async def clear(self, tx: Transaction) -> None:
        await tx.execute("DELETE FROM event_counts")

    async def apply(self, event: RecordedEvent, tx: Transaction) -> None:
        await tx.execute(
            "INSERT INTO event_counts (type, n) VALUES ($1, 1) "
            "ON CONFLICT (type) DO UPDATE SET n = event_counts.n + 1",
            event.type,
        )
        if event.type == self.fail_on:
            raise RuntimeError(f"projection bug on {event.type}")


async def counts(store: EventStore) -> dict[str, int]:
    async with store.transaction() as tx:
        rows = await tx.fetch("SELECT type, n FROM event_counts ORDER BY type")
    return {row["type"]: row["n"] for row in rows}


async def test_catch_up_applies_every_event_after_the_checkpoint_and_counts_them(
    store: EventStore,
) -> None:
    await store.append("a", new_events(3, type="created"), expected_version=0)
    await store.append("b", new_events(2, type="deleted"), expected_version=0)
    runner = ProjectionRunner(store, EventCounts(), batch_size=2)

    assert await runner.catch_up() == 5
    assert await runner.catch_up() == 0
    assert await counts(store) == {"created": 3, "deleted": 2}
    assert await store.load_checkpoint(runner.checkpoint_name) == await store.head_position()


async def test_projection_rebuilt_from_zero_equals_the_live_one(store: EventStore) -> None:
    runner = ProjectionRunner(store, EventCounts(), batch_size=3)
    expected: Counter[str] = Counter()
    types = ["created", "renamed", "tagged", "deleted"]
    for round_ in range(5):
        for n, type_ in enumerate(types[: round_ % 4 + 1]):
            batch = new_events(n + round_ + 1, type=type_)
            await store.append(f"doc-{round_}-{n}", batch, expected_version=0)
            expected[type_] += len(batch)
        await store.fork(f"fork-{round_}", f"doc-{round_}-0")
        await store.append(f"fork-{round_}", new_events(1, type="forked"), expected_version=None)
        expected["forked"] += 1
        await runner.catch_up()
    live = await counts(store)

    rebuilt_count = await runner.rebuild()

    assert live == dict(expected)
    assert await counts(store) == live
    assert rebuilt_count == sum(expected.values())


async def test_a_failing_apply_rolls_back_the_read_model_and_the_checkpoint(
    store: EventStore,
) -> None:
    await store.append("a", new_events(2, type="created"), expected_version=0)
    await store.append("a", new_events(1, type="poison"), expected_version=2)
    runner = ProjectionRunner(store, EventCounts(fail_on="poison"), batch_size=10)

    with pytest.raises(RuntimeError, match="projection bug"):
        await runner.catch_up()

    assert await counts(store) == {}
    assert await store.load_checkpoint(runner.checkpoint_name) == 0


async def test_after_a_failed_batch_a_fixed_projection_applies_each_event_exactly_once(
    store: EventStore,
) -> None:
    positions = await store.append("a", new_events(2, type="created"), expected_version=0)
    await store.append("a", new_events(1, type="poison"), expected_version=2)
    await store.append("a", new_events(1, type="created"), expected_version=3)
    broken = ProjectionRunner(store, EventCounts(fail_on="poison"), batch_size=2)

    with pytest.raises(RuntimeError):
        await broken.catch_up()
    assert await counts(store) == {"created": 2}  # the first batch committed, the second did not
    assert await store.load_checkpoint(broken.checkpoint_name) == positions[1]

    assert await ProjectionRunner(store, EventCounts(), batch_size=2).catch_up() == 2
    assert await counts(store) == {"created": 3, "poison": 1}


async def test_run_follows_appends_until_stopped(store: EventStore) -> None:
    runner = ProjectionRunner(store, EventCounts(), idle_timeout=0.2)
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))

    await store.append("a", new_events(2, type="created"), expected_version=0)
    for _ in range(100):
        if await store.load_checkpoint(runner.checkpoint_name) == await store.head_position():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(running, timeout=5)

    assert await counts(store) == {"created": 2}


async def test_run_returns_promptly_when_stopped_while_idle(store: EventStore) -> None:
    runner = ProjectionRunner(store, EventCounts(), idle_timeout=30)
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(0.1)

    stop.set()

    await asyncio.wait_for(running, timeout=2)
