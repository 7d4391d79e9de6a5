"""``SqliteEventStore``: the embedded default, on one aiosqlite connection (WAL for files).

SQLite has one writer, so appends are serialised by construction. Every operation of this
instance takes its turn on the one connection; the task holding a transaction may still read
through the store (it sees its own writes), but may not start a second write: SQLite cannot run
two write transactions side by side, so that raises ``RuntimeError`` instead of deadlocking.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiosqlite

from libs.errors import InfrastructureError
from libs.eventstore._sql import EncodedEvent, SqlEventStore, StoredIds, decode_json
from libs.eventstore.base import RecordedEvent, Transaction

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    parent_stream_id TEXT NULL,
    fork_position INTEGER NULL,
    base_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_stream_position ON events (stream_id, global_position);
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
COMMIT;
"""

_INSERT = """
INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
"""

# Result codes (primary, low byte) that mean the database, not the SQL, failed.
_INFRASTRUCTURE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """``$1`` -> ``?1``: the port's placeholders in SQLite's numbered form."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


class _SqliteTransaction:
    """The ``Transaction`` (and internal ``Connection``) over the store's aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute_fetchall(_placeholders(sql), args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor = await self._conn.executemany(_placeholders(sql), rows)
        await cursor.close()

    async def fetch(self, sql: str, *args: Any) -> list[Mapping[str, Any]]:
        return [dict(row) for row in await self.rows(sql, *args)]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.rows(sql, *args)
        return rows[0][0] if rows else None

    async def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(await self._conn.execute_fetchall(_placeholders(sql), args))


class _Turns:
    """Whose turn it is on the one connection (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        if self._holder is not None and self._holder is asyncio.current_task():
            yield
            return
        async with self._lock:
            yield

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise RuntimeError(
                "SqliteEventStore: this task already holds a transaction; SQLite has one writer, "
                "so append, fork, save_checkpoint and transaction() must wait until it ends"
            )
        async with self._lock:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None


@asynccontextmanager
async def _translated(*, every_error: bool) -> AsyncIterator[None]:
    """Driver errors as ``InfrastructureError``: all of them inside the store's own statements
    (its SQL is known good), only database failures inside a caller's transaction."""
    try:
        yield
    except sqlite3.Error as error:
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if every_error or code in _INFRASTRUCTURE_CODES:
            raise InfrastructureError(f"SQLite event store failed: {error}") from error
        raise


def _worker_thread(conn: aiosqlite.Connection) -> threading.Thread | None:
    """aiosqlite's worker thread (the connection itself before 0.22, ``_thread`` since)."""
    worker = getattr(conn, "_thread", conn)
    return worker if isinstance(worker, threading.Thread) else None


class SqliteEventStore(SqlEventStore[_SqliteTransaction]):
    """The ``EventStore`` port on SQLite; ``open(":memory:")`` keeps everything in memory."""

    # The embedded store is written by its own process, whose appends wake waiters at once:
    # polling only catches another process writing the same file. Every poll is a query on the
    # connection's thread, and a dozen waiters polling every 50 ms cost an idle runtime 7 % of a
    # core, taken from the model threads an ingestion runs beside.
    poll_interval: ClassVar[float] = 0.5

    def __init__(self, conn: aiosqlite.Connection) -> None:
        """Use ``await SqliteEventStore.open(path)``."""
        super().__init__()
        self._conn = conn
        self._tx = _SqliteTransaction(conn)
        self._turns = _Turns()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteEventStore:
        """Open (creating when missing) the store in the file at ``path``, or in memory."""
        target = os.fspath(path)
        conn = aiosqlite.connect(target, isolation_level=None)
        worker = _worker_thread(conn)
        if worker is not None:
            worker.daemon = True  # a store never closed must not keep the process alive at exit
        try:
            await conn
        except sqlite3.Error as error:
            # aiosqlite stops its worker without waiting for it; wait here, or the worker reports
            # to an event loop that may be closed by then.
            if worker is not None:
                await asyncio.to_thread(worker.join, 5)
            raise InfrastructureError(
                f"cannot open SQLite event store {target!r}: {error}"
            ) from error
        try:
            conn.row_factory = sqlite3.Row
            pragmas = ["synchronous = FULL", "busy_timeout = 5000"]
            if target not in ("", ":memory:"):
                pragmas.insert(0, "journal_mode = WAL")
            for pragma in pragmas:
                await conn.execute_fetchall(f"PRAGMA {pragma}")
            await conn.executescript(_SCHEMA)
        except sqlite3.Error as error:
            await conn.close()
            raise InfrastructureError(
                f"cannot open SQLite event store {target!r}: {error}"
            ) from error
        return cls(conn)

    async def close(self) -> None:
        async with self._turns.write():
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._turns.write(), _translated(every_error=False), self._begin() as tx:
            yield tx

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[_SqliteTransaction]:
        async with self._turns.read(), _translated(every_error=True):
            yield self._tx

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_SqliteTransaction]:
        async with self._turns.write(), _translated(every_error=True), self._begin() as tx:
            yield tx

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[_SqliteTransaction]:
        # A caller cancelled while its BEGIN was queued in aiosqlite's thread leaves the connection
        # inside a transaction nobody owns: it failed, so roll it back. The no-op goes through the
        # same queue, so every statement queued before it has run when we look.
        await self._conn.execute("SELECT 1")
        if self._conn.in_transaction:
            await self._tx.execute("ROLLBACK")
        # IMMEDIATE takes the write lock up front (other processes wait up to busy_timeout),
        # so a transaction never fails half-way for want of it.
        await self._tx.execute("BEGIN IMMEDIATE")
        try:
            yield self._tx
        except BaseException:
            with suppress(sqlite3.Error):  # SQLite may have rolled back already (e.g. disk full)
                await self._tx.execute("ROLLBACK")
            raise
        await self._tx.execute("COMMIT")

    async def _check(
        self, conn: _SqliteTransaction, stream_id: str, event_ids: Sequence[uuid.UUID]
    ) -> tuple[int, StoredIds]:
        version = await conn.fetchval("SELECT version FROM streams WHERE stream_id = $1", stream_id)
        rows = await conn.rows(
            "SELECT event_id, stream_id, global_position FROM events "
            "WHERE event_id IN (SELECT value FROM json_each($1))",
            json.dumps([str(event_id) for event_id in event_ids]),
        )
        stored = {uuid.UUID(event_id): (owner, position) for event_id, owner, position in rows}
        return version or 0, stored

    async def _insert(
        self,
        conn: _SqliteTransaction,
        stream_id: str,
        version: int,
        events: Sequence[EncodedEvent],
    ) -> list[int]:
        recorded_at = datetime.now(UTC).isoformat()
        await conn.executemany(
            _INSERT,
            [
                (stream_id, version + n, str(e.event_id), e.type, e.data, e.metadata, recorded_at)
                for n, e in enumerate(events, start=1)
            ],
        )
        await conn.execute(
            "INSERT INTO streams (stream_id, version) VALUES ($1, $2) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            stream_id,
            version + len(events),
        )
        rows = await conn.rows(
            "SELECT global_position FROM events WHERE stream_id = $1 AND stream_version > $2 "
            "ORDER BY stream_version",
            stream_id,
            version,
        )
        return [row[0] for row in rows]

    def _decode(self, row: Any) -> RecordedEvent:
        event_id, stream_id, version, position, type_, data, metadata, recorded_at = row
        return RecordedEvent(
            uuid.UUID(event_id),
            stream_id,
            version,
            position,
            type_,
            decode_json(data),
            decode_json(metadata),
            datetime.fromisoformat(recorded_at),
        )
