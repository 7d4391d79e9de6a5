"""Appending: positions, optimistic concurrency, idempotency by event id."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest

from libs.errors import ConcurrencyError, DuplicateEventError, InvalidInputError
from libs.eventstore import EventStore, NewEvent, event_ids_for

from .conftest import Backend
from .helpers import new_events, versions


async def test_append_returns_increasing_positions_across_streams(store: EventStore) -> None:
    first = await store.append("order-1", new_events(3), expected_version=0)
    second = await store.append("order-2", new_events(2), expected_version=0)
    third = await store.append("order-1", new_events(1), expected_version=3)

    positions = first + second + third
    assert positions == sorted(positions)
    assert len(set(positions)) == 6
    assert await store.head_position() == positions[-1]


async def test_append_numbers_versions_from_the_stream_head(store: EventStore) -> None:
    await store.append("order-1", new_events(2), expected_version=None)
    await store.append("order-1", new_events(3), expected_version=None)

    assert versions(await store.read_stream("order-1")) == [("order-1", v) for v in range(1, 6)]
    assert await store.stream_version("order-1") == 5


async def test_stream_version_of_a_missing_stream_is_zero(store: EventStore) -> None:
    assert await store.stream_version("never-written") == 0


async def test_head_position_of_an_empty_store_is_zero(store: EventStore) -> None:
    assert await store.head_position() == 0


async def test_expected_version_conflict_raises_with_expected_and_actual(
    store: EventStore,
) -> None:
    await store.append("order-1", new_events(2), expected_version=0)

    with pytest.raises(ConcurrencyError) as raised:
        await store.append("order-1", new_events(1), expected_version=1)

    assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == ("order-1", 1, 2)


async def test_expected_version_conflict_writes_nothing(store: EventStore) -> None:
    await store.append("order-1", new_events(2), expected_version=0)
    head = await store.head_position()

    with pytest.raises(ConcurrencyError):
        await store.append("order-1", new_events(3), expected_version=5)

    assert await store.head_position() == head
    assert await store.stream_version("order-1") == 2
    assert len(await store.read_stream("order-1")) == 2


async def test_expected_version_zero_on_an_existing_stream_conflicts(store: EventStore) -> None:
    await store.append("order-1", new_events(1), expected_version=0)

    with pytest.raises(ConcurrencyError) as raised:
        await store.append("order-1", new_events(1), expected_version=0)

    assert (raised.value.expected, raised.value.actual) == (0, 1)


async def test_expected_version_on_a_missing_stream_other_than_zero_conflicts(
    store: EventStore,
) -> None:
    with pytest.raises(ConcurrencyError) as raised:
        await store.append("order-1", new_events(1), expected_version=3)

    assert (raised.value.expected, raised.value.actual) == (3, 0)
    assert await store.stream_version("order-1") == 0


async def test_concurrent_appends_with_the_same_expected_version_exactly_one_wins(
    store: EventStore,
) -> None:
    await store.append("order-1", new_events(1), expected_version=0)

    results = await asyncio.gather(
        store.append("order-1", new_events(2, writer="a"), expected_version=1),
        store.append("order-1", new_events(2, writer="b"), expected_version=1),
        return_exceptions=True,
    )

    winners = [result for result in results if isinstance(result, list)]
    losers = [result for result in results if isinstance(result, ConcurrencyError)]
    assert (len(winners), len(losers)) == (1, 1)
    assert (losers[0].expected, losers[0].actual) == (1, 3)
    stored = await store.read_stream("order-1")
    assert len(stored) == 3
    assert len({event.data["writer"] for event in stored[1:]}) == 1


async def test_many_concurrent_unchecked_appends_all_land_with_distinct_versions(
    store: EventStore,
) -> None:
    await asyncio.gather(
        *(store.append("tally", new_events(5), expected_version=None) for _ in range(8))
    )

    assert versions(await store.read_stream("tally")) == [("tally", v) for v in range(1, 41)]
    all_positions = [event.global_position for event in await store.read_all(limit=100)]
    assert all_positions == sorted(set(all_positions))


async def test_repeating_an_append_with_the_same_event_ids_returns_the_same_positions(
    store: EventStore,
) -> None:
    batch = new_events(3)
    positions = await store.append("order-1", batch, expected_version=0)
    await store.append("order-1", new_events(1), expected_version=3)

    again = await store.append("order-1", batch, expected_version=0)

    assert again == positions
    assert await store.stream_version("order-1") == 4
    assert len(await store.read_all()) == 4


async def test_a_command_handled_twice_stores_its_events_once(store: EventStore) -> None:
    command_id = uuid.uuid4()
    ids = event_ids_for(command_id, 2)
    batch = [NewEvent(type="order.placed", data={"i": i}, event_id=ids[i]) for i in range(2)]

    first = await store.append("order-1", batch, expected_version=0)
    second = await store.append("order-1", batch, expected_version=0)

    assert first == second
    assert len(await store.read_stream("order-1")) == 2


async def test_partial_duplicate_raises_and_writes_nothing(store: EventStore) -> None:
    batch = new_events(2)
    await store.append("order-1", batch, expected_version=0)
    head = await store.head_position()

    with pytest.raises(DuplicateEventError):
        await store.append("order-1", [batch[1], *new_events(2)], expected_version=None)

    assert await store.head_position() == head
    assert await store.stream_version("order-1") == 2


async def test_event_ids_stored_in_another_stream_raise_duplicate(store: EventStore) -> None:
    batch = new_events(2)
    await store.append("order-1", batch, expected_version=0)

    with pytest.raises(DuplicateEventError, match="order-1"):
        await store.append("order-2", batch, expected_version=0)

    assert await store.stream_version("order-2") == 0


async def test_an_event_id_repeated_within_one_append_raises_duplicate(store: EventStore) -> None:
    event = new_events(1)[0]

    with pytest.raises(DuplicateEventError):
        await store.append("order-1", [event, event], expected_version=0)

    assert await store.head_position() == 0


async def test_appending_no_events_writes_nothing_but_still_checks_the_version(
    store: EventStore,
) -> None:
    assert await store.append("order-1", [], expected_version=0) == []
    assert await store.stream_version("order-1") == 0
    with pytest.raises(ConcurrencyError):
        await store.append("order-1", [], expected_version=2)


async def test_event_data_that_is_not_json_is_refused_before_anything_is_written(
    store: EventStore,
) -> None:
    with pytest.raises(InvalidInputError):
        await store.append(
            "order-1", [NewEvent(type="bad", data={"x": math.nan})], expected_version=0
        )
    with pytest.raises(InvalidInputError):
        await store.append(
            "order-1", [NewEvent(type="bad", data={"x": object()})], expected_version=0
        )

    assert await store.head_position() == 0


async def test_concurrent_appends_through_separate_instances_exactly_one_wins(
    backend: Backend, store: EventStore
) -> None:
    await store.append("order-1", new_events(1), expected_version=0)
    other = await backend.open()
    try:
        results = await asyncio.gather(
            store.append("order-1", new_events(1), expected_version=1),
            other.append("order-1", new_events(1), expected_version=1),
            return_exceptions=True,
        )
    finally:
        await other.close()

    assert sorted(type(result).__name__ for result in results) == ["ConcurrencyError", "list"]
    assert await store.stream_version("order-1") == 2


async def test_a_reader_following_read_all_misses_no_event_appended_concurrently(
    backend: Backend, store: EventStore
) -> None:
    writers = [await backend.open() for _ in range(3)]
    finished = asyncio.Event()
    followed: list[int] = []

    async def follow() -> None:
        position = 0
        while True:
            done = finished.is_set()  # read before the page: a last page follows the last write
            page = await store.read_all(from_position=position, limit=7)
            followed.extend(event.global_position for event in page)
            if page:
                position = page[-1].global_position
            elif done:
                return
            else:
                await asyncio.sleep(0.001)

    async def write(writer: EventStore, name: str) -> None:
        for _ in range(15):
            await writer.append(name, new_events(3), expected_version=None)

    reader = asyncio.create_task(follow())
    try:
        await asyncio.gather(*(write(writer, f"w-{n}") for n, writer in enumerate(writers)))
    finally:
        for writer in writers:
            await writer.close()
    finished.set()
    await asyncio.wait_for(reader, timeout=10)

    stored = [event.global_position for event in await store.read_all(limit=1000)]
    assert len(stored) == 3 * 15 * 3
    assert followed == stored
