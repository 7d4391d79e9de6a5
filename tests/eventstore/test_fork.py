"""Forks: O(1) branches of a stream that share history up to a position and nothing after."""

from __future__ import annotations

import pytest

from libs.errors import (
    ConcurrencyError,
    PositionOutOfRangeError,
    StreamExistsError,
    StreamNotFoundError,
)
from libs.eventstore import EventStore, ForkInfo

from .helpers import new_events, versions


async def test_fork_inherits_the_parent_history_under_the_parent_id(store: EventStore) -> None:
    await store.append("prod", new_events(3), expected_version=0)

    info = await store.fork("staging", "prod")

    assert info == ForkInfo(
        "staging", "prod", at_position=await store.head_position(), base_version=3
    )
    assert versions(await store.read_stream("staging")) == [("prod", 1), ("prod", 2), ("prod", 3)]
    assert await store.stream_version("staging") == 3


async def test_writes_to_the_parent_after_the_fork_do_not_show_in_the_fork(
    store: EventStore,
) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    await store.fork("staging", "prod")

    await store.append("prod", new_events(2), expected_version=2)

    assert versions(await store.read_stream("staging")) == [("prod", 1), ("prod", 2)]
    assert await store.stream_version("staging") == 2


async def test_writes_to_the_fork_do_not_show_in_the_parent(store: EventStore) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    await store.fork("staging", "prod")

    await store.append("staging", new_events(2), expected_version=2)

    assert versions(await store.read_stream("prod")) == [("prod", 1), ("prod", 2)]
    assert await store.stream_version("prod") == 2


async def test_fork_versions_continue_after_the_inherited_ones(store: EventStore) -> None:
    await store.append("prod", new_events(3), expected_version=0)
    info = await store.fork("staging", "prod")

    await store.append("staging", new_events(2), expected_version=info.base_version)

    assert versions(await store.read_stream("staging")) == [
        ("prod", 1),
        ("prod", 2),
        ("prod", 3),
        ("staging", 4),
        ("staging", 5),
    ]
    assert [e.stream_version for e in await store.read_stream("staging", from_version=3)] == [
        3,
        4,
        5,
    ]


async def test_expected_version_on_a_fork_counts_inherited_versions(store: EventStore) -> None:
    await store.append("prod", new_events(3), expected_version=0)
    await store.fork("staging", "prod")

    with pytest.raises(ConcurrencyError) as raised:
        await store.append("staging", new_events(1), expected_version=0)

    assert (raised.value.expected, raised.value.actual) == (0, 3)


async def test_fork_at_an_older_position_inherits_only_events_up_to_it(store: EventStore) -> None:
    positions = await store.append("prod", new_events(5), expected_version=0)

    info = await store.fork("past", "prod", at_position=positions[1])

    assert info.base_version == 2
    assert versions(await store.read_stream("past")) == [("prod", 1), ("prod", 2)]
    await store.append("past", new_events(1), expected_version=2)
    assert versions(await store.read_stream("past"))[-1] == ("past", 3)


async def test_fork_at_a_position_between_the_parent_events_counts_the_events_before_it(
    store: EventStore,
) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    other = await store.append("other", new_events(3), expected_version=0)
    await store.append("prod", new_events(2), expected_version=2)

    info = await store.fork("past", "prod", at_position=other[-1])

    assert info.base_version == 2
    assert versions(await store.read_stream("past")) == [("prod", 1), ("prod", 2)]


async def test_fork_of_a_fork_inherits_both_ancestors(store: EventStore) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    await store.fork("staging", "prod")
    await store.append("staging", new_events(2), expected_version=2)
    await store.append("prod", new_events(1), expected_version=2)

    info = await store.fork("experiment", "staging")
    await store.append("experiment", new_events(1), expected_version=4)
    await store.append("staging", new_events(1), expected_version=4)

    assert info.base_version == 4
    assert versions(await store.read_stream("experiment")) == [
        ("prod", 1),
        ("prod", 2),
        ("staging", 3),
        ("staging", 4),
        ("experiment", 5),
    ]
    assert versions(await store.read_stream("staging"))[-1] == ("staging", 5)
    assert await store.stream_version("prod") == 3


async def test_fork_of_a_fork_at_a_position_before_the_parent_fork_point(
    store: EventStore,
) -> None:
    positions = await store.append("prod", new_events(4), expected_version=0)
    await store.fork("staging", "prod", at_position=positions[2])
    await store.append("staging", new_events(2), expected_version=3)

    info = await store.fork("early", "staging", at_position=positions[0])

    assert info.base_version == 1
    assert versions(await store.read_stream("early")) == [("prod", 1)]
    await store.append("early", new_events(1), expected_version=1)
    assert versions(await store.read_stream("early")) == [("prod", 1), ("early", 2)]


async def test_fork_of_a_fork_cuts_the_grandparent_at_the_nearer_fork_point(
    store: EventStore,
) -> None:
    positions = await store.append("prod", new_events(4), expected_version=0)
    await store.fork("staging", "prod", at_position=positions[1])
    staging = await store.append("staging", new_events(1), expected_version=2)

    await store.fork("experiment", "staging", at_position=staging[0])

    assert versions(await store.read_stream("experiment")) == [
        ("prod", 1),
        ("prod", 2),
        ("staging", 3),
    ]


async def test_fork_at_position_zero_inherits_nothing(store: EventStore) -> None:
    await store.append("prod", new_events(2), expected_version=0)

    info = await store.fork("blank", "prod", at_position=0)

    assert info.base_version == 0
    assert await store.read_stream("blank") == []
    await store.append("blank", new_events(1), expected_version=0)
    assert versions(await store.read_stream("blank")) == [("blank", 1)]


async def test_read_all_yields_each_event_once_under_its_owner(store: EventStore) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    await store.fork("staging", "prod")
    await store.fork("experiment", "staging")
    await store.append("staging", new_events(1), expected_version=2)
    await store.append("experiment", new_events(1), expected_version=2)

    everything = await store.read_all()

    assert versions(everything) == [("prod", 1), ("prod", 2), ("staging", 3), ("experiment", 3)]
    assert len({event.event_id for event in everything}) == 4


async def test_fork_of_a_missing_stream_raises_stream_not_found(store: EventStore) -> None:
    with pytest.raises(StreamNotFoundError):
        await store.fork("staging", "never-written")

    assert await store.fork_info("staging") is None


async def test_fork_onto_an_existing_stream_id_raises_stream_exists(store: EventStore) -> None:
    await store.append("prod", new_events(1), expected_version=0)
    await store.append("staging", new_events(1), expected_version=0)

    with pytest.raises(StreamExistsError):
        await store.fork("staging", "prod")
    with pytest.raises(StreamExistsError):
        await store.fork("prod", "prod")

    assert await store.fork_info("staging") is None


async def test_fork_onto_an_existing_fork_raises_stream_exists(store: EventStore) -> None:
    await store.append("prod", new_events(1), expected_version=0)
    await store.fork("staging", "prod")

    with pytest.raises(StreamExistsError):
        await store.fork("staging", "prod")


@pytest.mark.parametrize("offset", [1, 100])
async def test_fork_beyond_the_head_raises_position_out_of_range(
    store: EventStore, offset: int
) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    head = await store.head_position()

    with pytest.raises(PositionOutOfRangeError) as raised:
        await store.fork("future", "prod", at_position=head + offset)

    assert (raised.value.position, raised.value.head) == (head + offset, head)
    assert await store.fork_info("future") is None


async def test_fork_at_a_negative_position_raises_position_out_of_range(
    store: EventStore,
) -> None:
    await store.append("prod", new_events(1), expected_version=0)

    with pytest.raises(PositionOutOfRangeError):
        await store.fork("before-time", "prod", at_position=-1)


async def test_fork_info_describes_a_fork_and_is_none_for_other_streams(
    store: EventStore,
) -> None:
    positions = await store.append("prod", new_events(3), expected_version=0)
    created = await store.fork("staging", "prod", at_position=positions[1])

    assert (
        await store.fork_info("staging") == created == ForkInfo("staging", "prod", positions[1], 2)
    )
    assert await store.fork_info("prod") is None
    assert await store.fork_info("never-written") is None


async def test_a_fork_of_an_empty_fork_is_a_fork_too(store: EventStore) -> None:
    await store.append("prod", new_events(2), expected_version=0)
    await store.fork("staging", "prod")

    info = await store.fork("experiment", "staging")

    assert info.base_version == 2
    assert versions(await store.read_stream("experiment")) == [("prod", 1), ("prod", 2)]
