"""The evaluation service's read models, folded from its own events (rebuildable from 0).

- ``evl_datasets``: one row per dataset (deleted ones flagged), queries and judgements as JSON.
- ``evl_evaluations``: one row per evaluation: its configuration, status and, once done, scores.
- ``evl_interactions``: every recorded interaction, in order (``position``, ``seq``).
- ``evl_benchmarks``: one row per benchmark: configuration, status, results of the last run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from contracts.evaluation import (
    BenchmarkCompleted,
    BenchmarkCreated,
    BenchmarkFailed,
    BenchmarkStarted,
    DatasetCreated,
    DatasetDeleted,
    EvaluationCompleted,
    EvaluationFailed,
    EvaluationStarted,
    InteractionsRecorded,
)
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.readmodels import bodies, first_body, live_bodies, live_by_id_or_name

TABLES = (
    """CREATE TABLE IF NOT EXISTS evl_datasets (
        namespace_id TEXT NOT NULL, dataset_id TEXT NOT NULL, dataset_name TEXT NOT NULL,
        deleted BOOLEAN NOT NULL, body TEXT NOT NULL, PRIMARY KEY (namespace_id, dataset_id))""",
    """CREATE TABLE IF NOT EXISTS evl_evaluations (
        namespace_id TEXT NOT NULL, evaluation_id TEXT NOT NULL, position BIGINT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (namespace_id, evaluation_id))""",
    """CREATE TABLE IF NOT EXISTS evl_interactions (
        namespace_id TEXT NOT NULL, interaction_id TEXT NOT NULL, session_id TEXT NOT NULL,
        position BIGINT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (namespace_id, interaction_id))""",
    """CREATE TABLE IF NOT EXISTS evl_benchmarks (
        namespace_id TEXT NOT NULL, benchmark_id TEXT NOT NULL, benchmark_name TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (namespace_id, benchmark_id))""",
)
_TABLE_NAMES = ("evl_datasets", "evl_evaluations", "evl_interactions", "evl_benchmarks")


class EvaluationProjection(TableProjection):
    name = "evaluation"

    create_statements = TABLES
    tables = _TABLE_NAMES

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        if not recorded.type.startswith("evaluation."):
            return
        position = recorded.global_position
        match from_recorded(recorded):
            case DatasetCreated() as e:
                body = e.model_dump(mode="json", exclude={"queries"}) | {
                    "queries": [q.model_dump(mode="json") for q in e.queries],
                    "query_count": len(e.queries),
                }
                await tx.execute(
                    "INSERT INTO evl_datasets VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (namespace_id, dataset_id) DO NOTHING",
                    e.namespace_id, e.dataset_id, e.dataset_name, False, json.dumps(body),
                )  # fmt: skip
            case DatasetDeleted() as e:
                await tx.execute(
                    "UPDATE evl_datasets SET deleted = $1 WHERE namespace_id = $2 AND dataset_id = $3",
                    True, e.namespace_id, e.dataset_id,
                )  # fmt: skip
            case EvaluationStarted() as e:
                body = e.model_dump(mode="json") | {"status": "PROCESSING"}
                await tx.execute(
                    "INSERT INTO evl_evaluations VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (namespace_id, evaluation_id) DO NOTHING",
                    e.namespace_id, e.evaluation_id, position, json.dumps(body),
                )  # fmt: skip
            case EvaluationCompleted() as e:
                done = e.model_dump(mode="json", exclude={"namespace_id", "evaluation_id"})
                await _update(tx, "evl_evaluations", "evaluation_id", e.namespace_id,
                              e.evaluation_id, lambda b: b.update(done, status="COMPLETED"))  # fmt: skip
            case EvaluationFailed() as e:
                failed = {"status": "FAILED", "error": e.error, "failed_at": e.failed_at}
                await _update(tx, "evl_evaluations", "evaluation_id", e.namespace_id,
                              e.evaluation_id, lambda b: b.update(failed))  # fmt: skip
            case InteractionsRecorded() as e:
                for seq, (interaction_id, item) in enumerate(
                    zip(e.interaction_ids, e.interactions, strict=True)
                ):
                    body = item.model_dump(mode="json") | {
                        "interaction_id": interaction_id,
                        "occurred_at": item.occurred_at or e.recorded_at,
                    }
                    await tx.execute(
                        "INSERT INTO evl_interactions VALUES ($1, $2, $3, $4, $5, $6) "
                        "ON CONFLICT (namespace_id, interaction_id) DO NOTHING",
                        e.namespace_id, interaction_id, item.session_id, position, seq,
                        json.dumps(body),
                    )  # fmt: skip
            case BenchmarkCreated() as e:
                body = e.model_dump(mode="json") | {"status": "DRAFT", "results": None}
                await tx.execute(
                    "INSERT INTO evl_benchmarks VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (namespace_id, benchmark_id) DO NOTHING",
                    e.namespace_id, e.benchmark_id, e.benchmark_name, json.dumps(body),
                )  # fmt: skip
            case BenchmarkStarted() as e:
                started = {"status": "PROCESSING", "task_id": e.task_id, "error": None}
                await _update(tx, "evl_benchmarks", "benchmark_id", e.namespace_id,
                              e.benchmark_id, lambda b: b.update(started))  # fmt: skip
            case BenchmarkCompleted() as e:
                done = {"status": "COMPLETED", "results": e.results, "completed_at": e.completed_at}
                await _update(tx, "evl_benchmarks", "benchmark_id", e.namespace_id,
                              e.benchmark_id, lambda b: b.update(done))  # fmt: skip
            case BenchmarkFailed() as e:
                failed = {"status": "FAILED", "error": e.error}
                await _update(tx, "evl_benchmarks", "benchmark_id", e.namespace_id,
                              e.benchmark_id, lambda b: b.update(failed))  # fmt: skip
            case _:
                pass


async def _update(
    tx: Transaction, table: str, key: str, namespace_id: str, identifier: str,
    change: Callable[[dict[str, Any]], None],
) -> None:  # fmt: skip
    rows = await tx.fetch(
        f"SELECT body FROM {table} WHERE namespace_id = $1 AND {key} = $2", namespace_id, identifier
    )
    if not rows:
        return
    body = json.loads(rows[0]["body"])
    change(body)
    await tx.execute(
        f"UPDATE {table} SET body = $1 WHERE namespace_id = $2 AND {key} = $3",
        json.dumps(body), namespace_id, identifier,
    )  # fmt: skip


# ---- queries -------------------------------------------------------------------------------


async def datasets(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "evl_datasets", "dataset", namespace_id)


async def dataset(tx: Transaction, namespace_id: str, identifier: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(tx, "evl_datasets", "dataset", namespace_id, identifier)


async def evaluations(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await bodies(
        tx,
        "SELECT body FROM evl_evaluations WHERE namespace_id = $1 ORDER BY position DESC",
        namespace_id,
    )


async def evaluation(
    tx: Transaction, namespace_id: str, evaluation_id: str
) -> dict[str, Any] | None:
    return await first_body(
        tx,
        "SELECT body FROM evl_evaluations WHERE namespace_id = $1 AND evaluation_id = $2",
        namespace_id,
        evaluation_id,
    )


async def interactions(
    tx: Transaction, namespace_id: str, *, session_id: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Newest first."""
    where = "namespace_id = $1" + (" AND session_id = $2" if session_id else "")
    args: tuple[Any, ...] = (namespace_id, session_id) if session_id else (namespace_id,)
    rows = await tx.fetch(
        f"SELECT body FROM evl_interactions WHERE {where} "
        f"ORDER BY position DESC, seq DESC LIMIT {int(limit)}",
        *args,
    )
    return [json.loads(row["body"]) for row in rows]


async def latest_sessions(tx: Transaction, namespace_id: str, count: int) -> list[str]:
    """The ``count`` sessions whose last interaction is the most recent, oldest first."""
    rows = await tx.fetch(
        "SELECT session_id, MAX(position * 1000000 + seq) AS last FROM evl_interactions "
        f"WHERE namespace_id = $1 GROUP BY session_id ORDER BY last DESC, session_id LIMIT {int(count)}",
        namespace_id,
    )
    return [row["session_id"] for row in reversed(rows)]


async def session_interactions(
    tx: Transaction, namespace_id: str, session_ids: list[str]
) -> list[dict[str, Any]]:
    """Every interaction of these sessions, in recorded order."""
    if not session_ids:
        return []
    rows = await tx.fetch(
        "SELECT session_id, body FROM evl_interactions WHERE namespace_id = $1 "
        "ORDER BY position, seq",
        namespace_id,
    )
    wanted = set(session_ids)
    return [json.loads(row["body"]) for row in rows if row["session_id"] in wanted]


async def benchmarks(tx: Transaction, namespace_id: str) -> list[dict[str, Any]]:
    return await live_bodies(tx, "evl_benchmarks", "benchmark", namespace_id, deletable=False)


async def benchmark(tx: Transaction, namespace_id: str, identifier: str) -> dict[str, Any] | None:
    return await live_by_id_or_name(
        tx, "evl_benchmarks", "benchmark", namespace_id, identifier, deletable=False
    )
