"""The retrieval service's read models, folded from its own events (rebuildable from 0).

- ``rtv_retrievers``: one row per retriever (deleted ones flagged), its definition as JSON.
- ``rtv_aliases``: one row per alias name and namespace, with the retriever it serves now.
- ``rtv_alias_moves``: every move, rollback, canary and shadow change of every alias (the
  history).
- ``rtv_shadow_comparisons``: one row per shadowed request (overlap@k, rank shift, latency
  delta), aggregated by ``shadow_summary``.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.retrieval import (
    AliasCreated,
    AliasDeleted,
    AliasMoved,
    AliasVariantChanged,
    RetrieverCreated,
    RetrieverDeleted,
    RetrieverUpdated,
    ShadowCompared,
)
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.readmodels import bodies, live_bodies, live_by_id_or_name

TABLES = (
    """CREATE TABLE IF NOT EXISTS rtv_retrievers (
        namespace_id TEXT NOT NULL, retriever_id TEXT NOT NULL, retriever_name TEXT NOT NULL,
        deleted BOOLEAN NOT NULL, body TEXT NOT NULL, PRIMARY KEY (namespace_id, retriever_id))""",
    """CREATE TABLE IF NOT EXISTS rtv_aliases (
        namespace_id TEXT NOT NULL, alias_name TEXT NOT NULL, alias_id TEXT NOT NULL,
        retriever_id TEXT NOT NULL, deleted BOOLEAN NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (namespace_id, alias_name))""",
    """CREATE TABLE IF NOT EXISTS rtv_alias_moves (
        namespace_id TEXT NOT NULL, alias_id TEXT NOT NULL, position BIGINT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (alias_id, position))""",
    """CREATE TABLE IF NOT EXISTS rtv_shadow_comparisons (
        namespace_id TEXT NOT NULL, alias_id TEXT NOT NULL, position BIGINT NOT NULL,
        primary_retriever_id TEXT NOT NULL, shadow_retriever_id TEXT NOT NULL,
        failed BOOLEAN NOT NULL, overlap DOUBLE PRECISION, rank_shift DOUBLE PRECISION,
        latency_delta DOUBLE PRECISION, body TEXT NOT NULL, PRIMARY KEY (alias_id, position))""",
)
_TABLE_NAMES = ("rtv_retrievers", "rtv_aliases", "rtv_alias_moves", "rtv_shadow_comparisons")
RECENT_COMPARISONS = 20


class RetrievalProjection(TableProjection):
    name = "retrieval"

    create_statements = TABLES
    tables = _TABLE_NAMES

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        if not recorded.type.startswith(("retriever.", "alias.")):
            return
        position = recorded.global_position
        match from_recorded(recorded):
            case RetrieverCreated() as e:
                body = e.model_dump(mode="json") | {"updated_at": e.created_at, "version": 1}
                await tx.execute(
                    "INSERT INTO rtv_retrievers VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (namespace_id, retriever_id) DO NOTHING",
                    e.namespace_id, e.retriever_id, e.retriever_name, False, json.dumps(body),
                )  # fmt: skip
            case RetrieverUpdated() as e:
                rows = await tx.fetch(
                    "SELECT body FROM rtv_retrievers WHERE namespace_id = $1 AND retriever_id = $2",
                    e.namespace_id, e.retriever_id,
                )  # fmt: skip
                if not rows:
                    return
                body = json.loads(rows[0]["body"])
                for field in ("retriever_name", "description", "tags"):
                    value = getattr(e, field)
                    if value is not None:
                        body[field] = value
                body["updated_at"] = e.updated_at
                body["version"] = int(body.get("version", 1)) + 1
                await tx.execute(
                    "UPDATE rtv_retrievers SET retriever_name = $1, body = $2 "
                    "WHERE namespace_id = $3 AND retriever_id = $4",
                    body["retriever_name"], json.dumps(body), e.namespace_id, e.retriever_id,
                )  # fmt: skip
            case RetrieverDeleted() as e:
                await tx.execute(
                    "UPDATE rtv_retrievers SET deleted = $1 "
                    "WHERE namespace_id = $2 AND retriever_id = $3",
                    True, e.namespace_id, e.retriever_id,
                )  # fmt: skip
            case AliasCreated() as e:
                body = e.model_dump(mode="json") | {
                    "previous_retriever_id": None, "canary": None, "shadow": None,
                }  # fmt: skip
                await tx.execute(
                    "INSERT INTO rtv_aliases VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (namespace_id, alias_name) DO UPDATE SET alias_id = "
                    "excluded.alias_id, retriever_id = excluded.retriever_id, deleted = "
                    "excluded.deleted, body = excluded.body",
                    e.namespace_id, e.alias_name, e.alias_id, e.retriever_id, False,
                    json.dumps(body),
                )  # fmt: skip
                created = {
                    "kind": "create", "from_retriever_id": None, "to_retriever_id": e.retriever_id,
                    "reason": "created", "moved_by": e.created_by, "moved_at": e.created_at,
                    "position": position,
                }  # fmt: skip
                await _record_move(tx, e.namespace_id, e.alias_id, position, created)
            case AliasMoved() as e:
                rows = await tx.fetch(
                    "SELECT body FROM rtv_aliases WHERE namespace_id = $1 AND alias_name = $2",
                    e.namespace_id, e.alias_name,
                )  # fmt: skip
                if not rows:
                    return
                body = json.loads(rows[0]["body"])
                body["retriever_id"] = e.to_retriever_id
                body["previous_retriever_id"] = e.from_retriever_id
                await tx.execute(
                    "UPDATE rtv_aliases SET retriever_id = $1, body = $2 "
                    "WHERE namespace_id = $3 AND alias_name = $4",
                    e.to_retriever_id, json.dumps(body), e.namespace_id, e.alias_name,
                )  # fmt: skip
                move = e.model_dump(
                    mode="json",
                    include={"kind", "from_retriever_id", "to_retriever_id", "reason", "moved_by",
                             "moved_at"},
                ) | {"position": position}  # fmt: skip
                await _record_move(tx, e.namespace_id, e.alias_id, position, move)
            case AliasVariantChanged() as e:
                await _change_variant(tx, e, position)
            case ShadowCompared() as e:
                failed = e.error is not None
                await tx.execute(
                    "INSERT INTO rtv_shadow_comparisons VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                    "ON CONFLICT (alias_id, position) DO NOTHING",
                    e.namespace_id, e.alias_id, position, e.primary_retriever_id,
                    e.shadow_retriever_id, failed, None if failed else e.overlap_at_k,
                    None if failed else e.mean_rank_shift,
                    None if failed else e.latency_delta_ms,
                    json.dumps(e.model_dump(mode="json", exclude={"namespace_id"})),
                )  # fmt: skip
            case AliasDeleted() as e:
                await tx.execute(
                    "UPDATE rtv_aliases SET deleted = $1 WHERE namespace_id = $2 AND alias_id = $3",
                    True, e.namespace_id, e.alias_id,
                )  # fmt: skip
            case _:
                pass


async def _change_variant(tx: Transaction, e: AliasVariantChanged, position: int) -> None:
    rows = await tx.fetch(
        "SELECT body FROM rtv_aliases WHERE namespace_id = $1 AND alias_name = $2",
        e.namespace_id, e.alias_name,
    )  # fmt: skip
    if not rows:
        return
    body = json.loads(rows[0]["body"])
    if e.retriever_id is None:
        body[e.variant] = None
    elif e.variant == "canary":
        body["canary"] = {"retriever_id": e.retriever_id, "percent": e.percent}
    else:
        body["shadow"] = {"retriever_id": e.retriever_id}
    await tx.execute(
        "UPDATE rtv_aliases SET body = $1 WHERE namespace_id = $2 AND alias_name = $3",
        json.dumps(body), e.namespace_id, e.alias_name,
    )  # fmt: skip
    change: dict[str, Any] = {
        "kind": e.variant if e.retriever_id is not None else f"{e.variant}_cleared",
        "from_retriever_id": e.previous_retriever_id, "to_retriever_id": e.retriever_id,
        "reason": e.reason, "moved_by": e.changed_by, "moved_at": e.changed_at,
        "position": position,
    }  # fmt: skip
    if e.variant == "canary" and e.retriever_id is not None:
        change["percent"] = e.percent
    await _record_move(tx, e.namespace_id, e.alias_id, position, change)


async def _record_move(
    tx: Transaction, namespace_id: str, alias_id: str, position: int, body: dict[str, Any]
) -> None:
    await tx.execute(
        "INSERT INTO rtv_alias_moves VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (alias_id, position) DO NOTHING",
        namespace_id, alias_id, position, json.dumps(body),
    )  # fmt: skip


# ---- queries -------------------------------------------------------------------------------


async def retrievers(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "rtv_retrievers", "retriever", namespace_id)


async def retriever(tx: Transaction, namespace_id: str, identifier: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(tx, "rtv_retrievers", "retriever", namespace_id, identifier)


async def aliases(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "rtv_aliases", "alias", namespace_id)


async def alias(tx: Transaction, namespace_id: str, alias_name: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(tx, "rtv_aliases", "alias", namespace_id, alias_name)


async def alias_history(tx: Transaction, alias_id: str) -> list[dict[str, Any]]:
    return await bodies(
        tx, "SELECT body FROM rtv_alias_moves WHERE alias_id = $1 ORDER BY position", alias_id
    )


async def shadow_summary(tx: Transaction, alias_id: str) -> list[dict[str, Any]]:
    """Per (primary, shadow) pair, newest pair first: how many comparisons, failures, and the
    means of overlap@k, rank shift and latency delta over the successful ones."""
    rows = await tx.fetch(
        "SELECT primary_retriever_id, shadow_retriever_id, COUNT(*) AS comparisons, "
        "SUM(CASE WHEN failed THEN 1 ELSE 0 END) AS failures, AVG(overlap) AS overlap, "
        "AVG(rank_shift) AS rank_shift, AVG(latency_delta) AS latency_delta, "
        "MAX(position) AS last_position FROM rtv_shadow_comparisons WHERE alias_id = $1 "
        "GROUP BY primary_retriever_id, shadow_retriever_id ORDER BY last_position DESC",
        alias_id,
    )
    return [
        {
            "primary_retriever_id": row["primary_retriever_id"],
            "shadow_retriever_id": row["shadow_retriever_id"],
            "comparisons": int(row["comparisons"]),
            "failures": int(row["failures"]),
            "mean_overlap_at_k": _float(row["overlap"]),
            "mean_rank_shift": _float(row["rank_shift"]),
            "mean_latency_delta_ms": _float(row["latency_delta"]),
        }
        for row in rows
    ]


async def recent_comparisons(tx: Transaction, alias_id: str) -> list[dict[str, Any]]:
    return await bodies(
        tx,
        "SELECT body FROM rtv_shadow_comparisons WHERE alias_id = $1 "
        "ORDER BY position DESC LIMIT $2",
        alias_id,
        RECENT_COMPARISONS,
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
