"""Reading: a stream by version, everything by global position, and what is stored."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from libs.errors import InvalidInputError
from libs.eventstore import EventStore, NewEvent, iterate_all

from .helpers import new_events, versions


async def test_read_stream_returns_events_in_version_order_with_their_data(
    store: EventStore,
) -> None:
    await store.append("order-1", new_events(3), expected_version=0)
    await store.append("order-2", new_events(1), expected_version=0)
    await store.append("order-1", new_events(2), expected_version=3)

    stored = await store.read_stream("order-1")

    assert versions(stored) == [("order-1", v) for v in range(1, 6)]
    assert [event.data["n"] for event in stored] == [0, 1, 2, 0, 1]


async def test_read_stream_from_version_skips_earlier_versions(store: EventStore) -> None:
    await store.append("order-1", new_events(5), expected_version=0)

    assert [e.stream_version for e in await store.read_stream("order-1", from_version=4)] == [4, 5]
    assert await store.read_stream("order-1", from_version=6) == []


async def test_read_stream_of_a_missing_stream_is_empty(store: EventStore) -> None:
    assert await store.read_stream("never-written") == []


async def test_recorded_events_keep_id_type_data_metadata_and_a_timezone_aware_time(
    store: EventStore,
) -> None:
    event_id = uuid.uuid4()
    data = {"title": "Ünïcode ✓", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    metadata = {"namespace_id": "ns_1", "trace": {"traceparent": "00-abc-01"}}
    before = datetime.now().astimezone()

    [position] = await store.append(
        "doc-1",
        [NewEvent(type="doc.created", data=data, metadata=metadata, event_id=event_id)],
        expected_version=0,
    )

    [stored] = await store.read_stream("doc-1")
    assert stored.event_id == event_id
    assert isinstance(stored.event_id, uuid.UUID)
    assert (stored.stream_id, stored.stream_version, stored.global_position) == (
        "doc-1",
        1,
        position,
    )
    assert (stored.type, stored.data, stored.metadata) == ("doc.created", data, metadata)
    assert stored.recorded_at.tzinfo is not None
    assert abs((stored.recorded_at - before).total_seconds()) < 60
    assert await store.read_all() == [stored]


async def test_read_all_returns_every_stream_in_global_order(store: EventStore) -> None:
    a = await store.append("a", new_events(2), expected_version=0)
    b = await store.append("b", new_events(2), expected_version=0)
    c = await store.append("a", new_events(1), expected_version=2)

    everything = await store.read_all()

    assert [event.global_position for event in everything] == a + b + c
    assert versions(everything) == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("a", 3)]


async def test_read_all_from_position_returns_only_later_events(store: EventStore) -> None:
    positions = await store.append("a", new_events(5), expected_version=0)

    later = await store.read_all(from_position=positions[1])

    assert [event.global_position for event in later] == positions[2:]
    assert await store.read_all(from_position=positions[-1]) == []


async def test_read_all_limit_caps_the_page(store: EventStore) -> None:
    positions = await store.append("a", new_events(5), expected_version=0)

    page = await store.read_all(from_position=positions[0], limit=2)

    assert [event.global_position for event in page] == positions[1:3]
    assert await store.read_all(limit=0) == []


async def test_read_all_refuses_a_negative_limit(store: EventStore) -> None:
    with pytest.raises(InvalidInputError):
        await store.read_all(limit=-1)


async def test_iterate_all_pages_through_every_event(store: EventStore) -> None:
    for n in range(4):
        await store.append(f"s-{n}", new_events(3), expected_version=0)

    seen = [event.global_position async for event in iterate_all(store, page=5)]

    assert seen == [event.global_position for event in await store.read_all(limit=100)]
    assert len(seen) == 12
