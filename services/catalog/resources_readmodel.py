"""Read models of buckets, objects and collections, shared by a namespace and its clones.

Rows carry ``owner``/``born``/``died`` and a ``lineage_key`` that is the same for a resource at
every level of a fork chain, so ``libs.views`` can pick, per resource, the row of the nearest
namespace. A write in a clone adds rows owned by the clone; it never touches the parent's.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.catalog import (
    BucketCreated,
    BucketDeleted,
    BucketUpdated,
    CollectionCreated,
    CollectionDeleted,
    CollectionUpdated,
    ObjectDeleted,
    ObjectStored,
)
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.views import View, visible_rows
from services.catalog.readmodel import namespace_view

KINDS = {
    "bucket": ("cat_buckets", "bucket_id"),
    "collection": ("cat_collections", "collection_id"),
    "object": ("cat_objects", "object_id"),
}

TABLES = (
    [
        f"""CREATE TABLE IF NOT EXISTS {table} (
        owner TEXT NOT NULL, born BIGINT NOT NULL, died BIGINT, deleted BOOLEAN NOT NULL,
        lineage_key TEXT NOT NULL, {key} TEXT NOT NULL, name TEXT, parent_id TEXT, key_value TEXT,
        body TEXT NOT NULL)"""
        for table, key in KINDS.values()
    ]
    + [
        f"CREATE INDEX IF NOT EXISTS {table}_by_owner ON {table} (owner, lineage_key)"
        for table, _ in KINDS.values()
    ]
    + ["CREATE INDEX IF NOT EXISTS cat_objects_by_parent ON cat_objects (owner, parent_id)"]
)


async def visible(
    tx: Transaction,
    kind: str,
    view: View,
    *,
    where: str = "",
    args: tuple[Any, ...] = (),
    suffix: str = "",
) -> list[dict[str, Any]]:
    """Rows of ``kind`` visible in ``view``, each with its id as the view names it and its body.

    Buckets and collections are renamed in a clone (``derive``); objects keep their ids, so a
    keyset page ``object_id > after`` means the same thing in every namespace of a lineage."""
    table, key = KINDS[kind]
    sql, params = visible_rows(table, "lineage_key", view, where=where, args=args)
    rows = await tx.fetch(sql + suffix, *params)
    return [
        {**json.loads(row["body"]), key: row[key] if kind == "object" else view.present(row["owner"], row[key]), "_owner": row["owner"],
         "_stored_id": row[key], "_lineage_key": row["lineage_key"], "_parent_id": row["parent_id"],
         "_key_value": row["key_value"]}
        for row in rows
    ]  # fmt: skip


async def find(tx: Transaction, kind: str, view: View, resource_id: str) -> dict[str, Any] | None:
    """The resource the view calls ``resource_id`` (resources are few; objects keep their ids)."""
    _, key = KINDS[kind]
    if kind == "object":
        rows = await visible(tx, kind, view, where=f"{key} = $1", args=(resource_id,))
    else:
        rows = [r for r in await visible(tx, kind, view) if r[key] == resource_id]
    return rows[0] if rows else None


class ResourcesProjection(TableProjection):
    name = "catalog-resources"

    create_statements = TABLES
    tables = tuple(table for table, _ in KINDS.values())

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        owner, position = recorded.stream_id, recorded.global_position
        match from_recorded(recorded):
            case BucketCreated() as e:
                body = e.model_dump(mode="json")
                await _insert(
                    tx,
                    "bucket",
                    owner,
                    position,
                    e.bucket_id,
                    e.bucket_id,
                    body,
                    name=e.bucket_name,
                )
            case CollectionCreated() as e:
                body = e.model_dump(mode="json")
                await _insert(
                    tx,
                    "collection",
                    owner,
                    position,
                    e.collection_id,
                    e.collection_id,
                    body,
                    name=e.collection_name,
                )
            case ObjectStored() as e:
                if e.replaces is not None:
                    await _remove(tx, "object", owner, position, e.replaces)
                body = e.model_dump(mode="json", exclude={"replaces"})
                await _insert(
                    tx,
                    "object",
                    owner,
                    position,
                    e.object_id,
                    e.object_id,
                    body,
                    parent_id=e.bucket_id,
                    key_value=e.key_value,
                )
            case BucketUpdated() as e:
                await _update(
                    tx,
                    "bucket",
                    owner,
                    position,
                    e.bucket_id,
                    e.model_dump(exclude_none=True),
                    name=e.bucket_name,
                )
            case CollectionUpdated() as e:
                await _update(
                    tx,
                    "collection",
                    owner,
                    position,
                    e.collection_id,
                    e.model_dump(exclude_none=True),
                    name=e.collection_name,
                )
            case BucketDeleted() as e:
                await _remove(tx, "bucket", owner, position, e.bucket_id)
            case CollectionDeleted() as e:
                await _remove(tx, "collection", owner, position, e.collection_id)
            case ObjectDeleted() as e:
                await _remove(tx, "object", owner, position, e.object_id)
            case _:
                pass


async def _insert(
    tx: Transaction, kind: str, owner: str, born: int, lineage_key: str, resource_id: str,
    body: dict[str, Any], *, name: str | None = None, parent_id: str | None = None,
    key_value: str | None = None, deleted: bool = False,
) -> None:  # fmt: skip
    table, key = KINDS[kind]
    await tx.execute(
        f"INSERT INTO {table} (owner, born, died, deleted, lineage_key, {key}, name, parent_id, key_value, body) "
        "VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9)",
        owner, born, deleted, lineage_key, resource_id, name, parent_id, key_value, json.dumps(body),
    )  # fmt: skip


async def _retire(tx: Transaction, kind: str, owner: str, position: int, lineage_key: str) -> None:
    table, _ = KINDS[kind]
    await tx.execute(
        f"UPDATE {table} SET died = $1 WHERE owner = $2 AND lineage_key = $3 AND died IS NULL",
        position, owner, lineage_key,
    )  # fmt: skip


async def _update(
    tx: Transaction,
    kind: str,
    owner: str,
    position: int,
    resource_id: str,
    changes: dict[str, Any],
    *,
    name: str | None,
) -> None:
    current = await find(tx, kind, await namespace_view(tx, owner), resource_id)
    if current is None:
        return
    body = {k: v for k, v in current.items() if not k.startswith("_")}
    body.update({k: v for k, v in changes.items() if k in body})
    await _retire(tx, kind, owner, position, current["_lineage_key"])
    await _insert(
        tx, kind, owner, position, current["_lineage_key"], resource_id, body,
        name=name or body.get(f"{kind}_name"), parent_id=body.get("bucket_id"),
    )  # fmt: skip


async def _remove(tx: Transaction, kind: str, owner: str, position: int, resource_id: str) -> None:
    """Retire the namespace's own row and leave a tombstone hiding any inherited one.

    The tombstone repeats the indexed columns of the row it hides, so every filtered read that
    would find that row finds the tombstone too."""
    current = await find(tx, kind, await namespace_view(tx, owner), resource_id)
    if current is None:
        return
    await _retire(tx, kind, owner, position, current["_lineage_key"])
    await _insert(
        tx, kind, owner, position, current["_lineage_key"], resource_id, {}, deleted=True,
        parent_id=current["_parent_id"], key_value=current["_key_value"],
    )  # fmt: skip
