"""Small builders and views shared by the event-store suite."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from libs.eventstore import NewEvent, RecordedEvent


def new_events(count: int, type: str = "thing.happened", **data: Any) -> list[NewEvent]:
    """``count`` new events whose data records their index within the batch."""
    return [NewEvent(type=type, data={"n": n, **data}) for n in range(count)]


def versions(recorded: Iterable[RecordedEvent]) -> list[tuple[str, int]]:
    """(owner stream, version) of each event: the shape most assertions compare."""
    return [(event.stream_id, event.stream_version) for event in recorded]
