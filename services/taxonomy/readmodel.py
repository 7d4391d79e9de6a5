"""The taxonomy service's read models, folded from its own events (rebuildable from 0).

- ``tax_taxonomies``: one row per taxonomy (deleted ones flagged), its config as JSON.
- ``tax_versions``: every change of every taxonomy (created, renamed, deleted), numbered.
- ``tax_clusters``: one row per cluster definition, with its last execution's result.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.taxonomy import (
    ClusterCreated,
    ClusterDeleted,
    ClusterExecutionCompleted,
    ClusterExecutionFailed,
    TaxonomyCreated,
    TaxonomyDeleted,
    TaxonomyUpdated,
)
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.readmodels import bodies, first_body, live_bodies, live_by_id_or_name

TABLES = (
    """CREATE TABLE IF NOT EXISTS tax_taxonomies (
        namespace_id TEXT NOT NULL, taxonomy_id TEXT NOT NULL, taxonomy_name TEXT NOT NULL,
        deleted BOOLEAN NOT NULL, body TEXT NOT NULL, PRIMARY KEY (namespace_id, taxonomy_id))""",
    """CREATE TABLE IF NOT EXISTS tax_versions (
        taxonomy_id TEXT NOT NULL, version BIGINT NOT NULL, position BIGINT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (taxonomy_id, version))""",
    """CREATE TABLE IF NOT EXISTS tax_clusters (
        namespace_id TEXT NOT NULL, cluster_id TEXT NOT NULL, cluster_name TEXT NOT NULL,
        deleted BOOLEAN NOT NULL, body TEXT NOT NULL, PRIMARY KEY (namespace_id, cluster_id))""",
)
_TABLE_NAMES = ("tax_taxonomies", "tax_versions", "tax_clusters")


class TaxonomyProjection(TableProjection):
    name = "taxonomy"

    create_statements = TABLES
    tables = _TABLE_NAMES

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        if not recorded.type.startswith(("taxonomy.", "cluster.")):
            return
        position = recorded.global_position
        match from_recorded(recorded):
            case TaxonomyCreated() as e:
                body = e.model_dump(mode="json") | {"updated_at": e.created_at, "version": 1}
                await tx.execute(
                    "INSERT INTO tax_taxonomies VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (namespace_id, taxonomy_id) DO NOTHING",
                    e.namespace_id, e.taxonomy_id, e.taxonomy_name, False, json.dumps(body),
                )  # fmt: skip
                await _version(tx, e.taxonomy_id, 1, position, "created", e.created_at, {})
            case TaxonomyUpdated() as e:
                found = await _body(
                    tx, "tax_taxonomies", "taxonomy_id", e.namespace_id, e.taxonomy_id
                )
                if found is None:
                    return
                body = found
                changes = {
                    k: getattr(e, k)
                    for k in ("taxonomy_name", "description")
                    if getattr(e, k) is not None
                }
                body.update(changes, updated_at=e.updated_at, version=int(body["version"]) + 1)
                await tx.execute(
                    "UPDATE tax_taxonomies SET taxonomy_name = $1, body = $2 "
                    "WHERE namespace_id = $3 AND taxonomy_id = $4",
                    body["taxonomy_name"], json.dumps(body), e.namespace_id, e.taxonomy_id,
                )  # fmt: skip
                await _version(
                    tx, e.taxonomy_id, body["version"], position, "updated", e.updated_at, changes
                )
            case TaxonomyDeleted() as e:
                await tx.execute(
                    "UPDATE tax_taxonomies SET deleted = $1 "
                    "WHERE namespace_id = $2 AND taxonomy_id = $3",
                    True, e.namespace_id, e.taxonomy_id,
                )  # fmt: skip
            case ClusterCreated() as e:
                body = e.model_dump(mode="json") | {"last_execution": None}
                await tx.execute(
                    "INSERT INTO tax_clusters VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (namespace_id, cluster_id) DO NOTHING",
                    e.namespace_id, e.cluster_id, e.cluster_name, False, json.dumps(body),
                )  # fmt: skip
            case ClusterDeleted() as e:
                await tx.execute(
                    "UPDATE tax_clusters SET deleted = $1 WHERE namespace_id = $2 AND cluster_id = $3",
                    True, e.namespace_id, e.cluster_id,
                )  # fmt: skip
            case ClusterExecutionCompleted() | ClusterExecutionFailed() as e:
                row = await _body(tx, "tax_clusters", "cluster_id", e.namespace_id, e.cluster_id)
                if row is None:
                    return
                body = row
                body["last_execution"] = e.model_dump(mode="json") | {
                    "status": "COMPLETED" if isinstance(e, ClusterExecutionCompleted) else "FAILED"
                }
                await tx.execute(
                    "UPDATE tax_clusters SET body = $1 WHERE namespace_id = $2 AND cluster_id = $3",
                    json.dumps(body), e.namespace_id, e.cluster_id,
                )  # fmt: skip
            case _:
                pass


async def _body(
    tx: Transaction, table: str, key: str, namespace_id: str, resource_id: str
) -> dict[str, Any] | None:
    return await first_body(
        tx, f"SELECT body FROM {table} WHERE namespace_id = $1 AND {key} = $2",
        namespace_id, resource_id,
    )  # fmt: skip


async def _version(
    tx: Transaction, taxonomy_id: str, version: int, position: int, change: str, at: str,
    fields: dict[str, Any],
) -> None:  # fmt: skip
    body = {"version": version, "change": change, "at": at, "fields": fields, "position": position}
    await tx.execute(
        "INSERT INTO tax_versions VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (taxonomy_id, version) DO NOTHING",
        taxonomy_id, version, position, json.dumps(body),
    )  # fmt: skip


# ---- queries -------------------------------------------------------------------------------


async def taxonomies(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "tax_taxonomies", "taxonomy", namespace_id)


async def taxonomy(tx: Transaction, namespace_id: str, identifier: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(tx, "tax_taxonomies", "taxonomy", namespace_id, identifier)


async def taxonomy_anywhere(tx: Transaction, taxonomy_id: str) -> dict[str, Any] | None:
    """A live taxonomy by id in any namespace (ids are unique; the query-time stage has no
    namespace at hand)."""
    return await first_body(
        tx, "SELECT body FROM tax_taxonomies WHERE taxonomy_id = $1 AND NOT deleted", taxonomy_id
    )


async def versions(tx: Transaction, taxonomy_id: str) -> list[dict[str, Any]]:
    return await bodies(
        tx, "SELECT body FROM tax_versions WHERE taxonomy_id = $1 ORDER BY version", taxonomy_id
    )


async def clones_of(tx: Transaction, namespace_id: str, taxonomy_id: str) -> list[str]:
    return [
        t["taxonomy_id"]
        for t in await taxonomies(tx, namespace_id)
        if t.get("cloned_from") == taxonomy_id
    ]


async def clusters(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "tax_clusters", "cluster", namespace_id)


async def cluster(tx: Transaction, namespace_id: str, identifier: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(tx, "tax_clusters", "cluster", namespace_id, identifier)
