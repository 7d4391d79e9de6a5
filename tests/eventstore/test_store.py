"""Checkpoints, read-model transactions, waiting for appends, reopening, and failures."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from libs.errors import InfrastructureError
from libs.eventstore import EventStore, NewEvent, open_event_store

from .conftest import Backend
from .helpers import new_events


async def test_checkpoint_of_a_consumer_that_never_ran_is_zero(store: EventStore) -> None:
    assert await store.load_checkpoint("mailer") == 0


async def test_saved_checkpoints_load_back_and_overwrite(store: EventStore) -> None:
    await store.save_checkpoint("mailer", 7)
    await store.save_checkpoint("indexer", 3)
    await store.save_checkpoint("mailer", 9)

    assert (await store.load_checkpoint("mailer"), await store.load_checkpoint("indexer")) == (9, 3)


async def test_checkpoint_saved_in_a_rolled_back_transaction_is_not_kept(
    store: EventStore,
) -> None:
    await store.save_checkpoint("mailer", 2)

    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await store.save_checkpoint("mailer", 5, tx=tx)
            raise RuntimeError("handler failed")

    assert await store.load_checkpoint("mailer") == 2


async def test_checkpoints_persist_across_reopening_the_store(backend: Backend) -> None:
    first = await backend.open()
    await first.append("a", new_events(2), expected_version=0)
    await first.save_checkpoint("mailer", 2)
    await first.close()

    reopened = await backend.open()
    try:
        assert await reopened.load_checkpoint("mailer") == 2
        assert await reopened.stream_version("a") == 2
    finally:
        await reopened.close()


async def test_transaction_commits_read_model_writes_with_dollar_placeholders(
    store: EventStore,
) -> None:
    async with store.transaction() as tx:
        await tx.execute("CREATE TABLE titles (id TEXT PRIMARY KEY, title TEXT, year INTEGER)")
        await tx.executemany(
            "INSERT INTO titles (id, title, year) VALUES ($1, $2, $3)",
            [("a", "Dune", 1965), ("b", "Solaris", 1961)],
        )

    async with store.transaction() as tx:
        rows = await tx.fetch(
            "SELECT id, title, year FROM titles WHERE year < $1 ORDER BY id", 2000
        )
        count = await tx.fetchval("SELECT COUNT(*) FROM titles WHERE title = $1", "Dune")

    assert [dict(row) for row in rows] == [
        {"id": "a", "title": "Dune", "year": 1965},
        {"id": "b", "title": "Solaris", "year": 1961},
    ]
    assert count == 1


async def test_transaction_rolls_back_on_error(store: EventStore) -> None:
    async with store.transaction() as tx:
        await tx.execute("CREATE TABLE titles (id TEXT PRIMARY KEY)")

    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO titles (id) VALUES ($1)", "a")
            raise RuntimeError("boom")

    async with store.transaction() as tx:
        assert await tx.fetchval("SELECT COUNT(*) FROM titles") == 0


async def test_a_transaction_can_read_the_event_store_while_it_is_open(
    store: EventStore,
) -> None:
    await store.append("a", new_events(2), expected_version=0)

    async with store.transaction() as tx:
        await tx.execute("CREATE TABLE seen (n INTEGER)")
        events = await store.read_stream("a")
        await tx.execute("INSERT INTO seen (n) VALUES ($1)", len(events))

    async with store.transaction() as tx:
        assert await tx.fetchval("SELECT n FROM seen") == 2


async def test_wait_for_append_wakes_at_once_for_an_append_through_the_same_store(
    store: EventStore,
) -> None:
    waiting = asyncio.create_task(store.wait_for_append(after_position=0, timeout=10))
    await asyncio.sleep(0.01)
    started = time.monotonic()

    await store.append("a", new_events(1), expected_version=0)

    assert await asyncio.wait_for(waiting, timeout=5) is True
    assert time.monotonic() - started < 1


async def test_wait_for_append_sees_appends_made_by_another_store_instance(
    backend: Backend, store: EventStore
) -> None:
    other = await backend.open()
    try:
        waiting = asyncio.create_task(store.wait_for_append(after_position=0, timeout=10))
        await asyncio.sleep(0.01)
        started = time.monotonic()

        await other.append("a", new_events(1), expected_version=0)

        assert await asyncio.wait_for(waiting, timeout=5) is True
        assert time.monotonic() - started < 1
    finally:
        await other.close()


async def test_wait_for_append_returns_false_after_the_timeout(store: EventStore) -> None:
    await store.append("a", new_events(1), expected_version=0)
    head = await store.head_position()
    started = time.monotonic()

    assert await store.wait_for_append(after_position=head, timeout=0.2) is False
    assert 0.15 < time.monotonic() - started < 2


async def test_wait_for_append_returns_at_once_when_the_head_is_already_past(
    store: EventStore,
) -> None:
    await store.append("a", new_events(1), expected_version=0)

    assert await store.wait_for_append(after_position=0, timeout=0) is True


async def test_an_unreachable_store_raises_infrastructure_error(backend: Backend) -> None:
    with pytest.raises(InfrastructureError):
        await open_event_store(backend.unreachable_url)


async def test_open_event_store_picks_the_adapter_from_the_url(backend: Backend) -> None:
    store = await open_event_store(backend.url)
    try:
        expected = {"sqlite": "SqliteEventStore", "postgres": "PostgresEventStore"}[backend.name]
        assert type(store).__name__ == expected
    finally:
        await store.close()


async def test_a_transaction_cancelled_mid_begin_does_not_wedge_the_store(backend: Backend) -> None:
    store = await backend.open()
    try:
        for _ in range(20):  # cancel at many points of the BEGIN/COMMIT round trips
            task = asyncio.create_task(
                store.append("s", [NewEvent(type="t", data={})], expected_version=None)
            )
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        await store.append("s", [NewEvent(type="t", data={})], expected_version=None)
    finally:
        await store.close()
