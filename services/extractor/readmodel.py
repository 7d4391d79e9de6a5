"""The extractor's read models, folded from its own events (rebuildable from position 0).

- ``ext_namespaces``: which lineage (hence which vector spaces) a namespace belongs to.
- ``ext_collections``: the collections the extractor serves, their space and active view owner.
- ``ext_documents``: one row per document version, with ``owner``/``born``/``died`` like the
  vector points, so a fork reads its parent's rows through the same segments as its vectors
  (``libs.views``): a clone copies no rows.
- ``ext_batches`` / ``ext_failures``: trigger batches and per-input failures.
- ``ext_marks``: for each catalog event that caused writes, the first extractor position it
  produced. A namespace fork at catalog position A maps to the extractor position just before
  the first write caused by a later event of the parent (see ``fork_position``).
"""

from __future__ import annotations

import json
from typing import Any

from contracts.extractor import (
    BatchFinished,
    BatchStarted,
    DocumentsDeleted,
    DocumentsWritten,
    ExtractorCollectionDropped,
    ExtractorCollectionRegistered,
    ExtractorNamespaceRegistered,
    GenerationActivated,
    ViewMaterialised,
)
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.vectors.views import generation_owner
from libs.views import Segment as RowSegment
from libs.views import View as RowView
from libs.views import visible_rows

TABLES = (
    """CREATE TABLE IF NOT EXISTS ext_namespaces (
        namespace_id TEXT PRIMARY KEY, lineage_root TEXT NOT NULL, parent_namespace_id TEXT,
        at_position BIGINT, upto BIGINT)""",
    """CREATE TABLE IF NOT EXISTS ext_collections (
        namespace_id TEXT NOT NULL, collection_id TEXT NOT NULL, deleted BOOLEAN NOT NULL,
        source_position BIGINT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (namespace_id, collection_id))""",
    """CREATE TABLE IF NOT EXISTS ext_documents (
        owner TEXT NOT NULL, born BIGINT NOT NULL, died BIGINT, deleted BOOLEAN NOT NULL,
        document_id TEXT NOT NULL, root_object_id TEXT NOT NULL, source_document_id TEXT,
        batch_id TEXT, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ext_documents_by_owner ON ext_documents (owner, document_id)",
    "CREATE INDEX IF NOT EXISTS ext_documents_by_root ON ext_documents (owner, root_object_id)",
    """CREATE TABLE IF NOT EXISTS ext_batches (
        batch_id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL, collection_id TEXT NOT NULL,
        task_id TEXT, owner TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
        total BIGINT, written BIGINT NOT NULL, model_calls BIGINT NOT NULL,
        cache_hits BIGINT NOT NULL, cache_misses BIGINT NOT NULL, result TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ext_failures (
        batch_id TEXT NOT NULL, input_id TEXT NOT NULL, root_object_id TEXT NOT NULL,
        error TEXT NOT NULL, PRIMARY KEY (batch_id, input_id))""",
    """CREATE TABLE IF NOT EXISTS ext_marks (
        namespace_id TEXT NOT NULL, source_position BIGINT NOT NULL, position BIGINT NOT NULL,
        PRIMARY KEY (namespace_id, source_position))""",
)
_TABLE_NAMES = (
    "ext_namespaces",
    "ext_collections",
    "ext_documents",
    "ext_batches",
    "ext_failures",
    "ext_marks",
)


def ingest_batch_id(collection_id: str, owner: str) -> str:
    """The standing batch that records live-ingest outcomes of one collection generation."""
    import hashlib

    return (
        "bat_" + hashlib.sha256(f"ingest\x00{collection_id}\x00{owner}".encode()).hexdigest()[:20]
    )


class ExtractorProjection(TableProjection):
    name = "extractor"

    create_statements = TABLES
    tables = _TABLE_NAMES

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        if not recorded.type.startswith("extractor."):
            return
        position = recorded.global_position
        source_position = recorded.metadata.get("source_position")
        source_namespace = recorded.metadata.get("source_namespace")
        if source_position is not None and source_namespace is not None:
            await tx.execute(
                "INSERT INTO ext_marks (namespace_id, source_position, position) VALUES ($1, $2, $3) "
                "ON CONFLICT (namespace_id, source_position) DO NOTHING",
                source_namespace,
                int(source_position),
                position,
            )
        match from_recorded(recorded):
            case ExtractorNamespaceRegistered() as e:
                await tx.execute(
                    "INSERT INTO ext_namespaces VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (namespace_id) DO NOTHING",
                    e.namespace_id, e.lineage_root, e.parent_namespace_id, e.at_position, e.upto,
                )  # fmt: skip
            case ExtractorCollectionRegistered() as e:
                await _register(tx, e, position)
            case ExtractorCollectionDropped() as e:
                await tx.execute(
                    "UPDATE ext_collections SET deleted = $1 "
                    "WHERE namespace_id = $2 AND collection_id = $3",
                    True, e.namespace_id, e.collection_id,
                )  # fmt: skip
            case DocumentsWritten() as e:
                await _written(tx, e, position)
            case DocumentsDeleted() as e:
                for document_id in e.document_ids:
                    await _retire(tx, e.owner, document_id, position)
                    await tx.execute(
                        "INSERT INTO ext_documents VALUES ($1, $2, NULL, $3, $4, $5, NULL, NULL, $6)",
                        e.owner, position, True, document_id, e.root_object_id or "", "{}",
                    )  # fmt: skip
            case BatchStarted() as e:
                await _ensure_batch(tx, e.batch_id, e.namespace_id, e.collection_id, e.owner,
                                    kind=e.kind, task_id=e.task_id, total=e.total)  # fmt: skip
                if e.kind == "trigger":
                    await _update_collection(
                        tx, e.namespace_id, e.collection_id,
                        lambda body: body.update(pending=sorted({*body["pending"], e.owner})),
                    )  # fmt: skip
            case ViewMaterialised() as e:
                await _materialised(tx, e, position)
            case GenerationActivated() as e:

                def activate(body: dict[str, Any], e: GenerationActivated = e) -> None:
                    body.update(
                        owner=e.owner, previous_owner=e.previous_owner, activated_at=position,
                        pending=[o for o in body["pending"] if o != e.owner], status="READY",
                    )  # fmt: skip

                await _update_collection(tx, e.namespace_id, e.collection_id, activate)
            case BatchFinished() as e:
                await tx.execute(
                    "UPDATE ext_batches SET status = $1, result = $2 WHERE batch_id = $3",
                    e.status, json.dumps(e.result), e.batch_id,
                )  # fmt: skip
            case _:
                pass


async def _register(tx: Transaction, e: ExtractorCollectionRegistered, position: int) -> None:
    body: dict[str, Any] = {
        "namespace_id": e.namespace_id, "collection_id": e.collection_id,
        "collection_name": e.collection_name, "feature_extractor": e.feature_extractor,
        "feature_uri": e.feature_uri, "source": e.source, "space": e.space.model_dump(),
        "owner": e.owner, "previous_owner": None, "activated_at": position, "pending": [],
        "status": e.status, "forked_from": e.forked_from, "forked_at": e.forked_at,
        "registered_at": position, "ingest_batch_id": ingest_batch_id(e.collection_id, e.owner),
    }  # fmt: skip
    await tx.execute(
        "INSERT INTO ext_collections VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (namespace_id, collection_id) DO NOTHING",
        e.namespace_id, e.collection_id, False, e.source_position, json.dumps(body),
    )  # fmt: skip


async def _update_collection(
    tx: Transaction, namespace_id: str, collection_id: str, change: Any
) -> None:
    rows = await tx.fetch(
        "SELECT body FROM ext_collections WHERE namespace_id = $1 AND collection_id = $2",
        namespace_id, collection_id,
    )  # fmt: skip
    if not rows:
        return
    body = json.loads(rows[0]["body"])
    change(body)
    await tx.execute(
        "UPDATE ext_collections SET body = $1 WHERE namespace_id = $2 AND collection_id = $3",
        json.dumps(body), namespace_id, collection_id,
    )  # fmt: skip


async def _ensure_batch(
    tx: Transaction, batch_id: str, namespace_id: str, collection_id: str, owner: str, *,
    kind: str, task_id: str | None = None, total: int | None = None,
) -> None:  # fmt: skip
    await tx.execute(
        "INSERT INTO ext_batches VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, 0, '{}') "
        "ON CONFLICT (batch_id) DO NOTHING",
        batch_id, namespace_id, collection_id, task_id, owner, kind,
        "ACTIVE" if kind == "ingest" else "PROCESSING", total,
    )  # fmt: skip


async def _materialised(tx: Transaction, e: ViewMaterialised, position: int) -> None:
    """Copy the inherited rows the view saw into its generation, as the vector store copies
    the inherited points (own live rows stay where they are)."""
    sql, params = visible_rows("ext_documents", "document_id", row_view(e.segments, e.owner))
    generation = generation_owner(e.owner, position)
    await tx.executemany(
        "INSERT INTO ext_documents VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)",
        [
            (generation, position, False, row["document_id"], row["root_object_id"],
             row["source_document_id"], row["batch_id"], row["body"])
            for row in await tx.fetch(sql, *params)
            if row["owner"] != e.owner
        ],
    )  # fmt: skip


async def _retire(tx: Transaction, owner: str, document_id: str, position: int) -> None:
    await tx.execute(
        "UPDATE ext_documents SET died = $1 WHERE owner = $2 AND document_id = $3 AND died IS NULL",
        position, owner, document_id,
    )  # fmt: skip


async def _written(tx: Transaction, e: DocumentsWritten, position: int) -> None:
    for doc in e.documents:
        await _retire(tx, e.owner, doc.document_id, position)
        body = doc.model_dump() | {"batch_id": e.batch_id}
        await tx.execute(
            "INSERT INTO ext_documents VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8)",
            e.owner, position, False, doc.document_id, doc.root_object_id,
            doc.source_document_id, e.batch_id, json.dumps(body),
        )  # fmt: skip
    batch_id = e.batch_id or ingest_batch_id(e.collection_id, e.owner)
    await _ensure_batch(tx, batch_id, e.namespace_id, e.collection_id, e.owner, kind="ingest")
    done = {doc.source_document_id or doc.root_object_id for doc in e.documents}
    for input_id in done:
        await tx.execute(
            "DELETE FROM ext_failures WHERE batch_id = $1 AND input_id = $2", batch_id, input_id
        )
    for failure in e.failures:
        await tx.execute(
            "INSERT INTO ext_failures VALUES ($1, $2, $3, $4) ON CONFLICT (batch_id, input_id) "
            "DO UPDATE SET error = excluded.error",
            batch_id, failure.input_id, failure.root_object_id, failure.error,
        )  # fmt: skip
    await tx.execute(
        "UPDATE ext_batches SET written = written + $1, model_calls = model_calls + $2, "
        "cache_hits = cache_hits + $3, cache_misses = cache_misses + $4 WHERE batch_id = $5",
        len(e.documents), e.model_calls, e.cache_hits, e.cache_misses, batch_id,
    )  # fmt: skip


# ---- queries -------------------------------------------------------------------------------


def row_view(segments: list[tuple[str, int | None]], owner: str) -> RowView:
    """The rows a vector view sees: its own live segment first, then inherited ones nearest
    first (a vector view lists the oldest ancestor first)."""
    own = [RowSegment(o, u) for o, u in segments if o == owner]
    inherited = [RowSegment(o, u) for o, u in reversed(segments) if o != owner]
    return RowView(tuple(own + inherited))


async def visible_documents(
    tx: Transaction, view: RowView, *, where: str = "", args: tuple[Any, ...] = (), suffix: str = ""
) -> list[dict[str, Any]]:
    sql, params = visible_rows("ext_documents", "document_id", view, where=where, args=args)
    rows = await tx.fetch(sql + suffix, *params)
    return [
        json.loads(row["body"]) | {"_owner": row["owner"], "_born": row["born"]} for row in rows
    ]


async def collections(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT body FROM ext_collections WHERE namespace_id = $1 AND NOT deleted "
        "ORDER BY collection_id",
        namespace_id,
    )
    return [json.loads(row["body"]) for row in rows]


async def collection(
    tx: Transaction, namespace_id: str, collection_id: str
) -> dict[str, Any] | None:
    rows = await tx.fetch(
        "SELECT body FROM ext_collections WHERE namespace_id = $1 AND collection_id = $2 "
        "AND NOT deleted",
        namespace_id, collection_id,
    )  # fmt: skip
    return json.loads(rows[0]["body"]) if rows else None


async def collections_as_of(
    tx: Transaction, namespace_id: str, source_position: int
) -> list[dict[str, Any]]:
    """Collections of the namespace created at or before a catalog position (deleted ones
    excluded: a delete after the fork is rare and the clone then lacks it — see ADR 0007)."""
    rows = await tx.fetch(
        "SELECT body FROM ext_collections WHERE namespace_id = $1 AND NOT deleted "
        "AND source_position <= $2 ORDER BY collection_id",
        namespace_id, source_position,
    )  # fmt: skip
    return [json.loads(row["body"]) for row in rows]


async def lineage_root(tx: Transaction, namespace_id: str) -> str:
    root = await tx.fetchval(
        "SELECT lineage_root FROM ext_namespaces WHERE namespace_id = $1", namespace_id
    )
    return str(root) if root else namespace_id


async def fork_position(tx: Transaction, namespace_id: str, at_position: int, head: int) -> int:
    """The extractor position that shows the parent as the catalog saw it at ``at_position``:
    just before the first write caused by a later parent event, else the head (nothing later
    was handled yet)."""
    first_later = await tx.fetchval(
        "SELECT min(position) FROM ext_marks WHERE namespace_id = $1 AND source_position > $2",
        namespace_id, at_position,
    )  # fmt: skip
    return head if first_later is None else int(first_later) - 1


async def batch(tx: Transaction, batch_id: str) -> dict[str, Any] | None:
    rows = await tx.fetch("SELECT * FROM ext_batches WHERE batch_id = $1", batch_id)
    if not rows:
        return None
    row = dict(rows[0])
    row["result"] = json.loads(row["result"])
    return row


async def failures(tx: Transaction, batch_id: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT input_id, root_object_id, error FROM ext_failures WHERE batch_id = $1 "
        "ORDER BY input_id",
        batch_id,
    )
    return [dict(row) for row in rows]


async def running_batches(tx: Transaction) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT * FROM ext_batches WHERE kind IN ('trigger', 'backfill') AND status = 'PROCESSING'"
    )
    return [dict(row) for row in rows]
