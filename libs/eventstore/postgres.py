"""``PostgresEventStore``: the production adapter, on an asyncpg pool.

Appends and forks take a transaction-scoped advisory lock before anything else, so they run one
at a time and global positions commit in increasing order: a ``read_all`` reader never finds a
committed event below one it has already seen. A batch is inserted with one ``INSERT ... SELECT
FROM unnest(...)`` round trip. ``schema`` puts every table (the store's and the read models
created through ``transaction()``) in that PostgreSQL schema, via the pool's ``search_path``.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from libs.errors import InfrastructureError
from libs.eventstore._sql import EncodedEvent, SqlEventStore, StoredIds, decode_json
from libs.eventstore.base import RecordedEvent, Transaction

_LOCK_CLASS = 0x0FF5_4007
"""First key of the append lock; the second is derived from the schema, so stores in different
schemas of one database do not wait for each other."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL,
    parent_stream_id text NULL,
    fork_position bigint NULL,
    base_version bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    global_position bigserial PRIMARY KEY,
    stream_id text NOT NULL,
    stream_version bigint NOT NULL,
    event_id uuid NOT NULL UNIQUE,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_stream_position ON events (stream_id, global_position);
CREATE TABLE IF NOT EXISTS checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
"""

# $1: stream, $2: event ids. One row per stored id, or one row of NULLs when none is.
_CHECK = """
SELECT COALESCE((SELECT version FROM streams WHERE stream_id = $1), 0),
       e.event_id, e.stream_id, e.global_position
FROM (SELECT 1) AS one LEFT JOIN events e ON e.event_id = ANY($2::uuid[])
"""

# The whole batch and the stream's new version in one round trip. Rows leave unnest in order,
# so positions are drawn from the sequence in version order.
_INSERT = """
WITH inserted AS (
    INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata)
    SELECT $1, $2::bigint + n, id, t, d::jsonb, m::jsonb
    FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS u(id, t, d, m, n)
    ORDER BY n
    RETURNING global_position
), stream AS (
    INSERT INTO streams (stream_id, version) VALUES ($1, $2::bigint + cardinality($3::uuid[]))
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
)
SELECT global_position FROM inserted ORDER BY global_position
"""

_Conn = asyncpg.Connection | PoolConnectionProxy


class _PgTransaction:
    """The ``Transaction`` (and internal ``Connection``) over one pooled asyncpg connection."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Mapping[str, Any]]:
        return [dict(record.items()) for record in await self._conn.fetch(sql, *args)]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(sql, *args)


def _is_infrastructure(error: BaseException) -> bool:
    """Connection loss, server shutdown, resource exhaustion, serialisation/deadlock aborts."""
    if isinstance(error, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = str(getattr(error, "sqlstate", "") or "")
        return sqlstate[:2] in {"08", "40", "53", "57", "58", "XX"}
    return False


@asynccontextmanager
async def _translated(*, every_error: bool) -> AsyncIterator[None]:
    """Driver errors as ``InfrastructureError``: all of them inside the store's own statements
    (its SQL is known good), only database failures inside a caller's transaction."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
        if every_error or _is_infrastructure(error):
            raise InfrastructureError(f"PostgreSQL event store failed: {error}") from error
        raise


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default ``RESET ALL; UNLISTEN *; ...`` round trip (the pool
    still rolls back an open transaction). The store leaves no session state behind; read-model
    SQL must not either (no plain ``SET``, ``LISTEN`` or session advisory locks)."""


class PostgresEventStore(SqlEventStore[_PgTransaction]):
    """The ``EventStore`` port on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, *, lock_key: int) -> None:
        """Use ``await PostgresEventStore.open(dsn)``."""
        super().__init__()
        self._pool = pool
        self._lock_key = lock_key

    @classmethod
    async def open(
        cls, dsn: str, *, schema: str | None = None, max_connections: int = 10
    ) -> PostgresEventStore:
        """Connect, and create the tables (and ``schema``) when missing."""
        settings = {
            "application_name": "offshoot-eventstore",
            # A plan cached while a table is small (a seq scan) would stay in use as it grows
            # until autovacuum's next ANALYZE; plan every execution instead (tens of µs).
            "plan_cache_mode": "force_custom_plan",
        }
        if schema is not None:
            settings["search_path"] = _quote(schema)
        async with _translated(every_error=True):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_connections,
                reset=_keep_session,
                server_settings=settings,
                timeout=10,
            )
        try:
            async with _translated(every_error=True), pool.acquire() as conn, conn.transaction():
                # The lock is per schema the tables live in; concurrent first opens would race on
                # CREATE ... IF NOT EXISTS, so they take turns under it too.
                where = (
                    schema if schema is not None else await conn.fetchval("SELECT current_schema()")
                )
                lock_key = zlib.crc32(str(where or "").encode()) - 2**31  # fits the int4 key
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, lock_key)
                if schema is not None:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
                await conn.execute(_SCHEMA)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, lock_key=lock_key)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with (
            _translated(every_error=False),
            self._pool.acquire() as conn,
            conn.transaction(),
        ):
            yield _PgTransaction(conn)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[_PgTransaction]:
        async with _translated(every_error=True), self._pool.acquire() as conn:
            yield _PgTransaction(conn)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_PgTransaction]:
        async with _translated(every_error=True), self._pool.acquire() as conn:
            # BEGIN and the lock in one round trip (a simple query may hold several statements).
            await conn.execute(
                f"BEGIN; SELECT pg_advisory_xact_lock({_LOCK_CLASS}, {self._lock_key})"
            )
            try:
                yield _PgTransaction(conn)
            except BaseException:
                with suppress(Exception):  # if this fails, the pool rolls back on release
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _check(
        self, conn: _PgTransaction, stream_id: str, event_ids: Sequence[uuid.UUID]
    ) -> tuple[int, StoredIds]:
        rows = await conn.rows(_CHECK, stream_id, event_ids)
        stored = {row[1]: (row[2], row[3]) for row in rows if row[1] is not None}
        return rows[0][0], stored

    async def _insert(
        self, conn: _PgTransaction, stream_id: str, version: int, events: Sequence[EncodedEvent]
    ) -> list[int]:
        rows = await conn.rows(
            _INSERT,
            stream_id,
            version,
            [e.event_id for e in events],
            [e.type for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
        )
        return [row[0] for row in rows]

    def _decode(self, row: Any) -> RecordedEvent:
        event_id, stream_id, version, position, type_, data, metadata, recorded_at = row
        return RecordedEvent(
            event_id,  # asyncpg's UUID, a subclass of uuid.UUID
            stream_id,
            version,
            position,
            type_,
            decode_json(data),  # asyncpg hands jsonb over as text
            decode_json(metadata),
            recorded_at,
        )


def _quote(identifier: str) -> str:
    """A PostgreSQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'
