"""The event-store port: append-only streams, a global order, O(1) forks, and SQL transactions
for read models kept beside the events (so a projection's checkpoint and its writes commit together).

Adapters: ``SqliteEventStore`` (embedded default) and ``PostgresEventStore`` (production).
Both run the one shared suite in ``tests/eventstore/``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended. Its id makes the append idempotent: derive it from the
    command id (``event_ids_for``) so a retried command stores nothing twice."""

    type: str
    data: JsonObject
    metadata: JsonObject = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored. ``stream_id`` is the stream that wrote it (its owner): reading a fork
    yields inherited events with the ancestor's id and the version they have in every descendant."""

    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    global_position: int
    type: str
    data: JsonObject
    metadata: JsonObject
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ForkInfo:
    """Where a fork branched: it inherits the parent's events with ``global_position <= at_position``
    (recursively through the parent's own ancestry), i.e. the first ``base_version`` versions."""

    stream_id: str
    parent_stream_id: str
    at_position: int
    base_version: int


def event_ids_for(command_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """Deterministic event ids for the events one command produces, so handling it twice is a no-op."""
    return [uuid.uuid5(command_id, str(index)) for index in range(count)]


class Transaction(Protocol):
    """SQL inside one database transaction. Placeholders are ``$1, $2, ...`` on every backend;
    JSON columns are TEXT holding ``json.dumps`` output on every backend."""

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Mapping[str, Any]]: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


class EventStore(Protocol):
    """Append-only streams with optimistic concurrency, a gap-free global order, and forks.

    Positions are committed in increasing order (appends are serialised), so a reader of
    ``read_all`` that has seen position N will never later find a committed event below N.
    """

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None
    ) -> list[int]:
        """Store ``events`` at the end of the stream; return their global positions.

        ``expected_version`` is the stream's version the caller decided on (0: the stream must be
        new), or ``None`` to skip the check. Raises ``ConcurrencyError`` when it differs.
        Appending events whose ids are all already stored in this stream is a no-op that returns
        their original positions; a partial overlap raises ``DuplicateEventError``.
        """
        ...

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        """The stream's events with version >= ``from_version``, inherited ones first. A missing
        stream reads as empty."""
        ...

    async def read_all(self, *, from_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events of every stream with ``global_position > from_position``, in order, at most
        ``limit``. Inherited events are not repeated: each event appears once, under its owner."""
        ...

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (inherited versions included); 0 for a missing stream."""
        ...

    async def head_position(self) -> int:
        """The highest committed global position; 0 for an empty store."""
        ...

    async def fork(
        self, new_stream_id: str, parent_stream_id: str, *, at_position: int | None = None
    ) -> ForkInfo:
        """Create ``new_stream_id`` as a fork of ``parent_stream_id`` as of ``at_position``
        (default: the head). O(1) in the parent's size: nothing is copied.

        Raises ``StreamNotFoundError`` for a missing parent, ``StreamExistsError`` when the new id
        is taken, ``PositionOutOfRangeError`` for a position beyond the head or below 0.
        """
        ...

    async def fork_info(self, stream_id: str) -> ForkInfo | None:
        """How ``stream_id`` was forked, or ``None`` when it is not a fork (or does not exist)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A database transaction for read models: committed on normal exit, rolled back on error."""
        ...

    async def load_checkpoint(self, name: str) -> int:
        """The last position a consumer called ``name`` has fully handled; 0 when it never ran."""
        ...

    async def save_checkpoint(
        self, name: str, position: int, *, tx: Transaction | None = None
    ) -> None:
        """Record ``position`` for ``name``; inside ``tx`` it commits with the read-model writes."""
        ...

    async def wait_for_append(self, *, after_position: int, timeout: float) -> bool:  # noqa: ASYNC109 (a poll interval, not a deadline)
        """Wait until the head passes ``after_position`` or ``timeout`` seconds go by; True if it did.
        Wakes at once for appends made through this instance and polls for others."""
        ...

    async def close(self) -> None: ...


async def iterate_all(
    store: EventStore, *, from_position: int = 0, page: int = 1000
) -> AsyncIterator[RecordedEvent]:
    """Every event after ``from_position`` up to the head as it is now, page by page."""
    position = from_position
    while True:
        events = await store.read_all(from_position=position, limit=page)
        for event in events:
            yield event
        if len(events) < page:
            return
        position = events[-1].global_position
