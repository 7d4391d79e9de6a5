"""The event-store logic both SQL backends share, written once against a tiny driver interface.

``SqliteEventStore`` and ``PostgresEventStore`` subclass ``SqlEventStore`` and supply only what
differs between drivers: how to connect, how writes are serialised, how a batch is inserted in
one round trip, how stored event ids are looked up, and how a row becomes a ``RecordedEvent``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from json.scanner import make_scanner
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from libs.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidInputError,
    PositionOutOfRangeError,
    StreamExistsError,
    StreamNotFoundError,
)
from libs.eventstore import _segments
from libs.eventstore.base import ForkInfo, NewEvent, RecordedEvent, Transaction

StoredIds = Mapping[uuid.UUID, tuple[str, int]]
"""Event ids already in the store: id -> (owner stream, global position)."""


class EncodedEvent(NamedTuple):
    """A ``NewEvent`` with its JSON already serialised (checked before any lock is taken)."""

    event_id: uuid.UUID
    type: str
    data: str
    metadata: str


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_json(value: Any) -> str:
    """Compact JSON text; ``InvalidInputError`` for what JSON cannot hold (NaN, sets, objects)."""
    try:
        return _encode(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"event data is not JSON: {error}") from error


# typeshed types make_scanner's argument as a scanner; it is any decoder-like object.
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode_json(text: str) -> Any:
    """``json.loads`` for the compact JSON the store wrote, about twice as fast: the C scanner
    without ``loads``' Python layers (replay spends most of its time here)."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the usual JSONDecodeError
    return value if end == len(text) else json.loads(text)


class Connection(Transaction, Protocol):
    """A ``Transaction`` that can also return the driver's own rows (indexable and unpackable in
    column order: ``asyncpg.Record``, ``sqlite3.Row``), skipping the dicts for hot paths."""

    async def rows(self, sql: str, *args: Any) -> list[Any]: ...


ConnT = TypeVar("ConnT", bound=Connection)


class SqlEventStore(ABC, Generic[ConnT]):
    """The ``EventStore`` port over SQL tables ``streams``, ``events`` and ``checkpoints``."""

    poll_interval: ClassVar[float] = 0.05
    """How often ``wait_for_append`` looks for appends made by other processes (seconds); this
    instance's own appends wake its waiters at once."""

    def __init__(self) -> None:
        self._appended = asyncio.Event()

    # -- what a driver supplies ---------------------------------------------------------------

    @abstractmethod
    def _reading(self) -> AbstractAsyncContextManager[ConnT]:
        """A connection for reads; driver errors inside become ``InfrastructureError``."""

    @abstractmethod
    def _writing(self) -> AbstractAsyncContextManager[ConnT]:
        """A transaction serialised with every other append and fork, committed on normal exit;
        driver errors inside become ``InfrastructureError``."""

    @abstractmethod
    async def _check(
        self, conn: ConnT, stream_id: str, event_ids: Sequence[uuid.UUID]
    ) -> tuple[int, StoredIds]:
        """The stream's version (0 when missing), and which of ``event_ids`` are stored."""

    @abstractmethod
    async def _insert(
        self, conn: ConnT, stream_id: str, version: int, events: Sequence[EncodedEvent]
    ) -> list[int]:
        """Insert ``events`` as versions ``version + 1 ...`` in one round trip, set the stream's
        version to ``version + len(events)`` (creating its row), and return their positions."""

    @abstractmethod
    def _decode(self, row: Any) -> RecordedEvent:
        """A row in ``_segments.EVENT_COLUMNS`` order as an event."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- the port -----------------------------------------------------------------------------

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None
    ) -> list[int]:
        event_ids = [event.event_id for event in events]
        if len(set(event_ids)) != len(event_ids):
            raise DuplicateEventError(f"an append to {stream_id!r} repeats an event id")
        encoded = [
            EncodedEvent(e.event_id, e.type, encode_json(e.data), encode_json(e.metadata))
            for e in events
        ]
        async with self._writing() as conn:
            version, stored = await self._check(conn, stream_id, event_ids)
            if stored:
                return _replayed(stream_id, event_ids, stored)
            if expected_version is not None and expected_version != version:
                raise ConcurrencyError(stream_id, expected_version, version)
            if not encoded:
                return []
            positions = await self._insert(conn, stream_id, version, encoded)
        self._signal_append()
        return positions

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        async with self._reading() as conn:
            segments = await conn.rows(_segments.SEGMENTS, stream_id, _segments.UNBOUNDED)
            if not segments:
                return []
            params = [value for owner, cutoff in segments for value in (owner, cutoff)]
            rows = await conn.rows(_segments.read_segments(len(segments)), from_version, *params)
        return self._decode_all(rows)

    async def read_all(self, *, from_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if limit < 0:
            raise InvalidInputError(f"read_all limit must be >= 0, not {limit}")
        async with self._reading() as conn:
            rows = await conn.rows(_segments.READ_ALL, from_position, limit)
        return self._decode_all(rows)

    async def stream_version(self, stream_id: str) -> int:
        async with self._reading() as conn:
            return await _version(conn, stream_id)

    async def head_position(self) -> int:
        async with self._reading() as conn:
            return await _head(conn)

    async def fork(
        self, new_stream_id: str, parent_stream_id: str, *, at_position: int | None = None
    ) -> ForkInfo:
        async with self._writing() as conn:
            if not await _stream_exists(conn, parent_stream_id):
                raise StreamNotFoundError(parent_stream_id)
            if await _stream_exists(conn, new_stream_id):
                raise StreamExistsError(new_stream_id)
            head = await _head(conn)
            position = head if at_position is None else at_position
            if not 0 <= position <= head:
                raise PositionOutOfRangeError(position, head)
            rows = await conn.rows(_segments.FORK_BASE, parent_stream_id, position)
            base_version, depth = int(rows[0][0]), int(rows[0][1])
            if depth + 1 >= _segments.MAX_DEPTH:
                raise InvalidInputError(
                    f"stream {parent_stream_id!r} is a fork {depth} levels deep; "
                    f"forks may nest at most {_segments.MAX_DEPTH - 1} levels"
                )
            await conn.execute(
                "INSERT INTO streams (stream_id, version, parent_stream_id, fork_position, "
                "base_version) VALUES ($1, $2, $3, $4, $2)",
                new_stream_id,
                base_version,
                parent_stream_id,
                position,
            )
        return ForkInfo(new_stream_id, parent_stream_id, position, base_version)

    async def fork_info(self, stream_id: str) -> ForkInfo | None:
        async with self._reading() as conn:
            rows = await conn.rows(
                "SELECT parent_stream_id, fork_position, base_version FROM streams "
                "WHERE stream_id = $1 AND parent_stream_id IS NOT NULL",
                stream_id,
            )
        if not rows:
            return None
        parent, position, base_version = rows[0]
        return ForkInfo(stream_id, str(parent), int(position), int(base_version))

    async def load_checkpoint(self, name: str) -> int:
        async with self._reading() as conn:
            position = await conn.fetchval("SELECT position FROM checkpoints WHERE name = $1", name)
        return 0 if position is None else int(position)

    async def save_checkpoint(
        self, name: str, position: int, *, tx: Transaction | None = None
    ) -> None:
        sql = (
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
        )
        if tx is not None:
            await tx.execute(sql, name, position)
            return
        async with self._writing() as conn:
            await conn.execute(sql, name, position)

    async def wait_for_append(self, *, after_position: int, timeout: float) -> bool:  # noqa: ASYNC109 (the port's signature)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            appended = self._appended  # taken before the check, so no signal slips between
            if await self.head_position() > after_position:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with suppress(TimeoutError):
                await asyncio.wait_for(appended.wait(), min(self.poll_interval, remaining))

    def _decode_all(self, rows: list[Any]) -> list[RecordedEvent]:
        """Every row as an event. The loop only allocates (it creates no reference cycles and
        never awaits), so the cyclic collector is paused for it: otherwise it would rescan the
        growing list of young dicts again and again, which doubles the time of a large read."""
        if not gc.isenabled():
            return [self._decode(row) for row in rows]
        gc.disable()
        try:
            return [self._decode(row) for row in rows]
        finally:
            gc.enable()

    def _signal_append(self) -> None:
        """Wake every ``wait_for_append`` of this instance (each waits on the event it saw)."""
        self._appended.set()
        self._appended = asyncio.Event()


def _replayed(stream_id: str, event_ids: Sequence[uuid.UUID], stored: StoredIds) -> list[int]:
    """The positions of an append already made, or ``DuplicateEventError`` for a partial overlap."""
    if len(stored) == len(event_ids) and all(owner == stream_id for owner, _ in stored.values()):
        return [stored[event_id][1] for event_id in event_ids]
    elsewhere = sorted({owner for owner, _ in stored.values()} - {stream_id})
    detail = f" (stored in {', '.join(map(repr, elsewhere))})" if elsewhere else ""
    raise DuplicateEventError(
        f"{len(stored)} of {len(event_ids)} event ids appended to {stream_id!r} "
        f"are already stored{detail}"
    )


async def _version(conn: Connection, stream_id: str) -> int:
    version = await conn.fetchval("SELECT version FROM streams WHERE stream_id = $1", stream_id)
    return 0 if version is None else int(version)


async def _head(conn: Connection) -> int:
    head = await conn.fetchval("SELECT MAX(global_position) FROM events")
    return 0 if head is None else int(head)


async def _stream_exists(conn: Connection, stream_id: str) -> bool:
    return await conn.fetchval("SELECT 1 FROM streams WHERE stream_id = $1", stream_id) is not None
