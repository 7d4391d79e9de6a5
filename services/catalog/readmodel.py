"""The catalog's read models: organizations, keys, namespaces and tasks, projected from its store.

Each table is rebuilt from position 0 by ``ProjectionRunner.rebuild``; rows are written in the
same transaction as the checkpoint, so a crash never applies an event twice.
"""

from __future__ import annotations

import json

from contracts.auth import ApiKeyCreated, ApiKeyRevoked, OrganizationCreated
from contracts.namespaces import (
    NamespaceActivated,
    NamespaceCloneFailed,
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceForkAcknowledged,
    NamespaceForked,
    NamespaceUpdated,
)
from contracts.tasks import FINISHED, TaskCreated, TaskFinished, TaskProgressed, TaskStatus
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction
from libs.views import View

TABLES = [
    """CREATE TABLE IF NOT EXISTS cat_organizations (
        organization_id TEXT PRIMARY KEY, internal_id TEXT NOT NULL, name TEXT NOT NULL,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cat_keys (
        key_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, name TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL, permissions TEXT NOT NULL, namespace_ids TEXT,
        revoked BOOLEAN NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cat_namespaces (
        namespace_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, namespace_name TEXT NOT NULL,
        description TEXT NOT NULL, status TEXT NOT NULL, parent_namespace_id TEXT,
        forked_at BIGINT, view TEXT NOT NULL, task_id TEXT, awaiting TEXT NOT NULL,
        mapping TEXT NOT NULL, created_at TEXT NOT NULL, created_position BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cat_tasks (
        task_id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL, organization_id TEXT NOT NULL,
        kind TEXT NOT NULL, resource_id TEXT, status TEXT NOT NULL, done BIGINT NOT NULL,
        total BIGINT, result TEXT NOT NULL, error TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
]


# Task events may arrive twice (the bus redelivers; the catalog's own come back through it):
# a finished task never changes again, and a creation is inserted once.
_FINISHED = ", ".join(f"'{status.value}'" for status in FINISHED)


class CatalogProjection(TableProjection):
    name = "catalog"

    create_statements = TABLES
    tables = ("cat_organizations", "cat_keys", "cat_namespaces", "cat_tasks")

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        at = recorded.recorded_at.isoformat()
        match from_recorded(recorded):
            case OrganizationCreated() as e:
                await tx.execute(
                    "INSERT INTO cat_organizations VALUES ($1, $2, $3, $4)",
                    e.organization_id, e.internal_id, e.name, at,
                )  # fmt: skip
            case ApiKeyCreated() as e:
                namespaces = None if e.namespace_ids is None else json.dumps(e.namespace_ids)
                await tx.execute(
                    "INSERT INTO cat_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    e.key_id, e.organization_id, e.name, e.secret_sha256,
                    json.dumps([p.value for p in e.permissions]), namespaces, False, at,
                )  # fmt: skip
            case ApiKeyRevoked() as e:
                await tx.execute(
                    "UPDATE cat_keys SET revoked = $1 WHERE key_id = $2", True, e.key_id
                )
            case NamespaceCreated() as e:
                await self._insert_namespace(
                    tx, e.namespace_id, e.organization_id, e.namespace_name, e.description,
                    status="ACTIVE", view=View.root(e.namespace_id), at=at,
                    position=recorded.global_position,
                )  # fmt: skip
            case NamespaceForked() as e:
                parent_view = await namespace_view(tx, e.parent_namespace_id)
                await self._insert_namespace(
                    tx, e.namespace_id, e.organization_id, e.namespace_name, e.description,
                    status="CLONING", view=parent_view.fork(e.namespace_id, at_position=e.at_position),
                    at=at, position=recorded.global_position, parent=e.parent_namespace_id,
                    forked_at=e.at_position, task_id=e.task_id, awaiting=e.awaiting, mapping=e.mapping,
                )  # fmt: skip
            case NamespaceForkAcknowledged() as e:
                row = await tx.fetch(
                    "SELECT awaiting, mapping FROM cat_namespaces WHERE namespace_id = $1",
                    e.namespace_id,
                )
                awaiting = [s for s in json.loads(row[0]["awaiting"]) if s != e.service]
                mapping = {**json.loads(row[0]["mapping"]), **e.mapping}
                await tx.execute(
                    "UPDATE cat_namespaces SET awaiting = $1, mapping = $2 WHERE namespace_id = $3",
                    json.dumps(awaiting), json.dumps(mapping), e.namespace_id,
                )  # fmt: skip
            case NamespaceActivated() as e:
                await self._set_status(tx, e.namespace_id, "ACTIVE")
            case NamespaceCloneFailed() as e:
                await self._set_status(tx, e.namespace_id, "FAILED")
            case NamespaceDeleted() as e:
                await self._set_status(tx, e.namespace_id, "DELETED")
            case NamespaceUpdated() as e:
                if e.namespace_name is not None:
                    await tx.execute(
                        "UPDATE cat_namespaces SET namespace_name = $1 WHERE namespace_id = $2",
                        e.namespace_name, e.namespace_id,
                    )  # fmt: skip
                if e.description is not None:
                    await tx.execute(
                        "UPDATE cat_namespaces SET description = $1 WHERE namespace_id = $2",
                        e.description, e.namespace_id,
                    )  # fmt: skip
            case TaskCreated() as e:
                await tx.execute(
                    "INSERT INTO cat_tasks VALUES ($1, $2, $3, $4, $5, $6, 0, $7, '{}', NULL, $8, $8) "
                    "ON CONFLICT (task_id) DO NOTHING",
                    e.task_id, e.namespace_id, e.organization_id, e.kind, e.resource_id,
                    TaskStatus.PENDING.value, e.total, at,
                )  # fmt: skip
            case TaskProgressed() as e:
                await tx.execute(
                    "UPDATE cat_tasks SET status = $1, done = $2, total = COALESCE($3, total), "
                    f"updated_at = $4 WHERE task_id = $5 AND status NOT IN ({_FINISHED})",
                    e.status.value, e.done, e.total, at, e.task_id,
                )  # fmt: skip
            case TaskFinished() as e:
                await tx.execute(
                    "UPDATE cat_tasks SET status = $1, result = $2, error = $3, updated_at = $4 "
                    f"WHERE task_id = $5 AND status NOT IN ({_FINISHED})",
                    e.status.value, json.dumps(e.result), e.error, at, e.task_id,
                )  # fmt: skip
            case _:
                pass  # events of the resources other read models project

    async def _insert_namespace(
        self,
        tx: Transaction,
        namespace_id: str,
        organization_id: str,
        name: str,
        description: str,
        *,
        status: str,
        view: View,
        at: str,
        position: int,
        parent: str | None = None,
        forked_at: int | None = None,
        task_id: str | None = None,
        awaiting: list[str] | None = None,
        mapping: dict[str, str] | None = None,
    ) -> None:
        await tx.execute(
            "INSERT INTO cat_namespaces VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            namespace_id, organization_id, name, description, status, parent, forked_at,
            json.dumps(view.to_json()), task_id, json.dumps(awaiting or []), json.dumps(mapping or {}),
            at, position,
        )  # fmt: skip

    async def _set_status(self, tx: Transaction, namespace_id: str, status: str) -> None:
        await tx.execute(
            "UPDATE cat_namespaces SET status = $1 WHERE namespace_id = $2", status, namespace_id
        )


async def namespace_view(tx: Transaction, namespace_id: str) -> View:
    rows = await tx.fetch("SELECT view FROM cat_namespaces WHERE namespace_id = $1", namespace_id)
    return View.from_json(json.loads(rows[0]["view"]))
