"""A durable inbox for ``object.stored``: the bus hands objects over one at a time, the model
and the stores want them in chunks.

The bus delivers a partition's messages one by one and commits each after its handler returns,
so a handler that waited for a chunk to fill would wait forever. Instead the handler records the
object here (one small insert in the extractor's own database, keyed by the catalog event id, so
a redelivery is a no-op) and returns; a drain loop per namespace takes the pending rows in
catalog order, *claims* up to ``limit`` of them under a chunk id derived from their event ids,
processes the chunk (one model call per model-sized batch, one event append and one vector
upsert per collection generation) and marks it done. A crash between claim and done leaves the
claim in place: the drain after restart takes exactly the same chunk again, whose event ids are
the same, so the event store returns the original positions and the vector upsert lands on the
same points. Done rows keep only their ids (the body is cleared), so an old event redelivered
after restart is still recognised.

A chunk never straddles a row whose object replaces another (that row starts a new chunk, so
the deletion of the old version precedes the new one) nor a given ``split_at`` position (a
namespace fork at catalog position A must see writes of objects up to A apart from later ones).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from libs.eventstore import EventStore

CHUNK_NS = uuid.UUID("5c1f3d0e-2b7a-5e48-8f0d-7a9c4e21b3d6")
TABLE = """CREATE TABLE IF NOT EXISTS ext_inbox (
    event_id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL, source_position BIGINT NOT NULL,
    body TEXT, replaces BOOLEAN NOT NULL, chunk TEXT, done BOOLEAN NOT NULL)"""
INDEX = "CREATE INDEX IF NOT EXISTS ext_inbox_pending ON ext_inbox (namespace_id, done, source_position)"


async def create(store: EventStore) -> None:
    async with store.transaction() as tx:
        await tx.execute(TABLE)
        await tx.execute(INDEX)


async def put(
    store: EventStore, event_id: uuid.UUID, namespace_id: str, position: int, body: dict[str, Any]
) -> None:
    """Record an ``object.stored`` event (its data); a known event id changes nothing."""
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO ext_inbox VALUES ($1, $2, $3, $4, $5, NULL, $6) "
            "ON CONFLICT (event_id) DO NOTHING",
            str(event_id), namespace_id, position, json.dumps(body),
            body.get("replaces") is not None, False,
        )  # fmt: skip


async def pending_namespaces(store: EventStore) -> list[str]:
    async with store.transaction() as tx:
        rows = await tx.fetch("SELECT DISTINCT namespace_id FROM ext_inbox WHERE done = $1", False)
    return [str(row["namespace_id"]) for row in rows]


async def claim(
    store: EventStore, namespace_id: str, *, limit: int, split_at: int | None = None
) -> tuple[uuid.UUID, list[dict[str, Any]]] | None:
    """The next chunk of the namespace (an unfinished claim first), or None when none is left."""
    async with store.transaction() as tx:
        rows = [
            dict(row)
            for row in await tx.fetch(
                "SELECT event_id, source_position, body, replaces, chunk FROM ext_inbox "
                "WHERE namespace_id = $1 AND done = $2 ORDER BY source_position LIMIT $3",
                namespace_id,
                False,
                limit,
            )
        ]
        if not rows:
            return None
        if rows[0]["chunk"] is not None:
            chunk = rows[0]["chunk"]
            taken = [row for row in rows if row["chunk"] == chunk]
            return uuid.UUID(chunk), [_decoded(row) for row in taken]
        taken = []
        for row in rows:
            if row["chunk"] is not None or (taken and row["replaces"]):
                break
            if (
                taken
                and split_at is not None
                and taken[0]["source_position"] <= split_at < row["source_position"]
            ):
                break
            taken.append(row)
        chunk_id = uuid.uuid5(CHUNK_NS, "\x00".join(row["event_id"] for row in taken))
        await tx.executemany(
            "UPDATE ext_inbox SET chunk = $1 WHERE event_id = $2",
            [(str(chunk_id), row["event_id"]) for row in taken],
        )
    return chunk_id, [_decoded(row) for row in taken]


async def finish(store: EventStore, chunk: uuid.UUID) -> None:
    """The chunk's writes are stored: keep only the ids, so a late redelivery is still known."""
    async with store.transaction() as tx:
        await tx.execute(
            "UPDATE ext_inbox SET done = $1, body = NULL WHERE chunk = $2", True, str(chunk)
        )


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": uuid.UUID(row["event_id"]),
        "source_position": int(row["source_position"]),
        "data": json.loads(row["body"]),
    }
