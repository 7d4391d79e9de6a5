"""The catalog service: organizations and keys, namespaces and their O(1) clones, tasks.

Commands are handled under one lock per process, appended with optimistic concurrency and
idempotent event ids (derived from the command id), then projected before the call returns, so
a caller always reads its own writes. A namespace is one stream; cloning it is a store fork.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.auth import (
    ApiKeyCreated,
    ApiKeyRevoked,
    CreateApiKey,
    OrganizationCreated,
    Permission,
)
from contracts.base import Event
from contracts.catalog import CollectionDeleted
from contracts.envelope import Envelope
from contracts.namespaces import (
    CloneNamespace,
    CreateNamespace,
    DeleteNamespace,
    NamespaceActivated,
    NamespaceCloneFailed,
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceForkAcknowledged,
    NamespaceForked,
    NamespaceUpdated,
    UpdateNamespace,
)
from contracts.tasks import TaskCreated, TaskFinished, TaskStatus
from libs.auth import Principal, StoredKey, generate_key
from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.event_codec import from_recorded, to_new_event
from libs.eventstore import EventStore, ProjectionRunner, RecordedEvent, event_ids_for
from libs.ids import derive, is_id, new_id
from services.catalog.namespace import Namespace, fold
from services.catalog.readmodel import CatalogProjection, namespace_view
from services.catalog.resources_readmodel import ResourcesProjection, visible


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    api_key: str  # shown once


class CatalogService:
    def __init__(self, store: EventStore, *, fork_participants: Sequence[str] = ()) -> None:
        self.store = store
        self.fork_participants = list(fork_participants)
        # Resources read namespace views, so the namespaces projection always runs first.
        self._tasks_projection = CatalogProjection()
        self._runners = [
            ProjectionRunner(store, self._tasks_projection),
            ProjectionRunner(store, ResourcesProjection()),
        ]
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Bring the read models up to the store's head (after every write, and at start)."""
        for runner in self._runners:
            await runner.catch_up()

    async def _append(
        self, stream_id: str, events: Sequence[Event], *, expected_version: int | None,
        namespace_id: str | None, command_id: uuid.UUID | None = None, refresh: bool = True,
    ) -> list[int]:  # fmt: skip
        """Append (idempotently when a command id is given), then project unless told not to yet."""
        ids = (
            event_ids_for(command_id, len(events)) if command_id else [uuid.uuid4() for _ in events]
        )
        positions = await self.store.append(
            stream_id,
            [
                to_new_event(e, namespace_id=namespace_id, event_id=i)
                for e, i in zip(events, ids, strict=True)
            ],
            expected_version=expected_version,
        )
        if refresh:
            await self.refresh()
        return positions

    async def append_to_namespace(
        self, namespace_id: str, events: Sequence[Event], *, command_id: uuid.UUID | None = None
    ) -> list[int]:
        """Append resource events to a namespace's stream (call under ``lock``)."""
        return await self._append(
            namespace_id,
            events,
            expected_version=None,
            namespace_id=namespace_id,
            command_id=command_id,
        )

    async def append_event(self, stream_id: str, event: Event, *, event_id: uuid.UUID) -> None:
        """Append one event idempotently to a stream of its own (call under ``lock``)."""
        await self._append(
            stream_id,
            [event],
            expected_version=None,
            namespace_id=None,
            command_id=event_id,
            refresh=False,
        )

    async def append_task(self, event: TaskCreated) -> None:
        """Start a task (call under ``lock``); its stream is its id."""
        await self._append(
            event.task_id, [event], expected_version=0, namespace_id=event.namespace_id
        )

    # ---- organizations and keys ------------------------------------------------------------

    async def bootstrap(self, organization_name: str = "default") -> tuple[str, NewKey]:
        """Create the first organization and its admin key; refused once any exists."""
        async with self.store.transaction() as tx:
            existing = await tx.fetch("SELECT organization_id FROM cat_organizations LIMIT 1")
        if existing:
            raise ConflictError(
                f"already initialised: organization {existing[0]['organization_id']} exists"
            )
        return await self.create_organization(organization_name)

    async def create_organization(self, name: str) -> tuple[str, NewKey]:
        """A new organization with an admin key (an operator's action, not an API call)."""
        organization_id = new_id("org")
        key_id, api_key, secret_hash = generate_key()
        async with self.lock:
            await self._append(
                organization_id,
                [
                    OrganizationCreated(organization_id=organization_id, internal_id=secrets.token_hex(12), name=name),
                    ApiKeyCreated(
                        key_id=key_id, organization_id=organization_id, name="admin",
                        secret_sha256=secret_hash, permissions=[Permission.ADMIN],
                    ),
                ],
                expected_version=0, namespace_id=None,
            )  # fmt: skip
        return organization_id, NewKey(key_id, api_key)

    async def create_key(self, principal: Principal, command: CreateApiKey) -> NewKey:
        principal.require(Permission.ADMIN)
        for namespace_id in command.namespace_ids or []:
            await self.namespace(principal, namespace_id)
        key_id, api_key, secret_hash = generate_key()
        event = ApiKeyCreated(
            key_id=key_id, organization_id=principal.organization_id, name=command.name,
            secret_sha256=secret_hash, permissions=command.permissions, namespace_ids=command.namespace_ids,
        )  # fmt: skip
        async with self.lock:
            await self._append(
                principal.organization_id,
                [event],
                expected_version=None,
                namespace_id=None,
                command_id=command.command_id,
            )
        return NewKey(key_id, api_key)

    async def revoke_key(self, principal: Principal, key_id: str) -> None:
        principal.require(Permission.ADMIN)
        stored = await self.find_key(key_id)
        if stored is None or stored.organization_id != principal.organization_id:
            raise NotFoundError(f"API key {key_id!r} not found")
        async with self.lock:
            await self._append(
                principal.organization_id, [ApiKeyRevoked(key_id=key_id, organization_id=principal.organization_id)],
                expected_version=None, namespace_id=None,
            )  # fmt: skip

    async def find_key(self, key_id: str) -> StoredKey | None:
        async with self.store.transaction() as tx:
            rows = await tx.fetch("SELECT * FROM cat_keys WHERE key_id = $1", key_id)
        if not rows:
            return None
        row = rows[0]
        scope = (
            None if row["namespace_ids"] is None else frozenset(json.loads(row["namespace_ids"]))
        )
        return StoredKey(
            key_id=row["key_id"], organization_id=row["organization_id"], secret_sha256=row["secret_sha256"],
            permissions=frozenset(Permission(p) for p in json.loads(row["permissions"])),
            namespace_ids=scope, revoked=bool(row["revoked"]),
        )  # fmt: skip

    # ---- namespaces --------------------------------------------------------------------------

    async def namespace(
        self, principal: Principal, identifier: str, *, as_of: int | None = None
    ) -> dict[str, Any]:
        """A visible namespace by id or name; 404 for anything the key may not know about."""
        async with self.store.transaction() as tx:
            column = "namespace_id" if is_id(identifier, "ns") else "namespace_name"
            rows = await tx.fetch(
                f"SELECT * FROM cat_namespaces WHERE {column} = $1 AND organization_id = $2 AND status = $3",
                identifier, principal.organization_id, "ACTIVE",
            )  # fmt: skip
        if not rows or not principal.sees_namespace(rows[0]["namespace_id"]):
            raise NotFoundError(f"namespace {identifier!r} not found")
        record = _namespace_record(rows[0])
        if as_of is not None:
            record = await self._namespace_as_of(record, as_of)
        return record

    async def _namespace_as_of(self, record: dict[str, Any], position: int) -> dict[str, Any]:
        head = await self.store.head_position()
        if position < record["created_position"] or position > head:
            raise InvalidInputError(
                f"as_of={position} is outside the life of namespace {record['namespace_id']} "
                f"(positions {record['created_position']}..{head})"
            )
        events = [
            e
            for e in await self.store.read_stream(record["namespace_id"])
            if e.global_position <= position
        ]
        state: Namespace = fold(from_recorded(e) for e in events)
        return {
            **record,
            "namespace_name": state.namespace_name,
            "description": state.description,
            "as_of": position,
        }

    async def list_namespaces(self, principal: Principal) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM cat_namespaces WHERE organization_id = $1 AND status = $2 ORDER BY namespace_name",
                principal.organization_id, "ACTIVE",
            )  # fmt: skip
        return [_namespace_record(r) for r in rows if principal.sees_namespace(r["namespace_id"])]

    async def _name_taken(self, organization_id: str, name: str) -> bool:
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT 1 FROM cat_namespaces WHERE organization_id = $1 AND namespace_name = $2 "
                "AND status IN ('ACTIVE', 'CLONING')",
                organization_id, name,
            )  # fmt: skip
        return bool(rows)

    async def create_namespace(
        self, principal: Principal, command: CreateNamespace
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        if principal.namespace_ids is not None:
            raise NotFoundError("this API key is scoped to namespaces and cannot create new ones")
        async with self.lock:
            if await self._name_taken(principal.organization_id, command.namespace_name):
                raise ConflictError(f"a namespace named {command.namespace_name!r} already exists")
            namespace_id = new_id("ns")
            event = NamespaceCreated(
                namespace_id=namespace_id, organization_id=principal.organization_id,
                namespace_name=command.namespace_name, description=command.description,
            )  # fmt: skip
            await self._append(
                namespace_id,
                [event],
                expected_version=0,
                namespace_id=namespace_id,
                command_id=command.command_id,
            )
        return await self.namespace(principal, namespace_id)

    async def update_namespace(
        self, principal: Principal, command: UpdateNamespace
    ) -> dict[str, Any]:
        principal.require(Permission.WRITE)
        current = await self.namespace(principal, command.namespace_id)
        async with self.lock:
            name = command.namespace_name
            if (
                name is not None
                and name != current["namespace_name"]
                and await self._name_taken(principal.organization_id, name)
            ):
                raise ConflictError(f"a namespace named {name!r} already exists")
            event = NamespaceUpdated(
                namespace_id=current["namespace_id"],
                namespace_name=name,
                description=command.description,
            )
            await self._append(
                current["namespace_id"],
                [event],
                expected_version=None,
                namespace_id=current["namespace_id"],
            )
        return await self.namespace(principal, current["namespace_id"])

    async def delete_namespace(self, principal: Principal, command: DeleteNamespace) -> None:
        principal.require(Permission.WRITE)
        current = await self.namespace(principal, command.namespace_id)
        async with self.lock:
            event = NamespaceDeleted(namespace_id=current["namespace_id"])
            await self._append(
                current["namespace_id"],
                [event],
                expected_version=None,
                namespace_id=current["namespace_id"],
            )

    async def clone_namespace(
        self, principal: Principal, command: CloneNamespace
    ) -> dict[str, Any]:
        """Fork the namespace's stream (O(1)) and start the clone task; returns the task."""
        principal.require(Permission.WRITE)
        source = await self.namespace(principal, command.namespace_id)
        async with self.lock:
            if await self._name_taken(principal.organization_id, command.namespace_name):
                raise ConflictError(f"a namespace named {command.namespace_name!r} already exists")
            namespace_id, task_id = new_id("ns"), new_id("tsk")
            fork = await self.store.fork(namespace_id, source["namespace_id"])
            mapping, dropped = await self._clone_mapping(
                source["namespace_id"], namespace_id, command
            )
            forked = NamespaceForked(
                namespace_id=namespace_id, organization_id=principal.organization_id,
                namespace_name=command.namespace_name, description=command.description,
                parent_namespace_id=source["namespace_id"], at_position=fork.at_position,
                include_resources=command.include_resources, task_id=task_id,
                awaiting=self.fork_participants, mapping=mapping,
            )  # fmt: skip
            created = TaskCreated(
                task_id=task_id, namespace_id=namespace_id, organization_id=principal.organization_id,
                kind="namespace.clone", resource_id=namespace_id,
            )  # fmt: skip
            namespace_events: list[Event] = [forked, *dropped]
            task_events: list[Event] = [created]
            if not self.fork_participants:  # nobody else to wait for: complete in the same writes
                namespace_events.append(NamespaceActivated(namespace_id=namespace_id))
                task_events.append(_clone_completed(task_id, namespace_id, mapping))
            await self._append(
                namespace_id, namespace_events, expected_version=fork.base_version,
                namespace_id=namespace_id, command_id=command.command_id, refresh=False,
            )  # fmt: skip
            await self._append(task_id, task_events, expected_version=0, namespace_id=namespace_id)
        return await self.task(principal, task_id)

    async def _clone_mapping(
        self, source_id: str, namespace_id: str, command: CloneNamespace
    ) -> tuple[dict[str, str], list[Event]]:
        """``{old_id: new_id}`` for what the clone brings, and deletions for what it leaves out."""
        async with self.store.transaction() as tx:
            view = await namespace_view(tx, source_id)
            buckets = await visible(tx, "bucket", view)
            collections = await visible(tx, "collection", view)
        mapping = {source_id: namespace_id}
        mapping.update({b["bucket_id"]: derive(namespace_id, b["bucket_id"]) for b in buckets})
        if command.include_resources.collections:
            mapping.update(
                {c["collection_id"]: derive(namespace_id, c["collection_id"]) for c in collections}
            )
            return mapping, []
        return mapping, [
            CollectionDeleted(collection_id=derive(namespace_id, c["collection_id"]))
            for c in collections
        ]

    async def apply_task_event(self, envelope: Envelope) -> None:
        """Task events of other services (from the bus) join the tasks read model."""
        recorded = RecordedEvent(
            event_id=envelope.event_id, stream_id=envelope.stream_id, stream_version=envelope.version,
            global_position=envelope.global_position or 0, type=envelope.type, data=envelope.data,
            metadata={}, recorded_at=envelope.occurred_at,
        )  # fmt: skip
        async with self.store.transaction() as tx:
            await self._tasks_projection.apply(recorded, tx)

    async def acknowledge_fork(self, ack: NamespaceForkAcknowledged) -> None:
        """A participant forked its state (or failed): the last acknowledgement ends the clone."""
        async with self.lock:
            async with self.store.transaction() as tx:
                rows = await tx.fetch(
                    "SELECT status, awaiting FROM cat_namespaces WHERE namespace_id = $1",
                    ack.namespace_id,
                )
            if (
                not rows
                or rows[0]["status"] != "CLONING"
                or ack.service not in json.loads(rows[0]["awaiting"])
            ):
                return  # a duplicate or late acknowledgement
            await self._append(
                ack.namespace_id, [ack], expected_version=None, namespace_id=ack.namespace_id
            )
            if ack.error is not None:
                await self._finish_clone(
                    ack.namespace_id, ack.task_id, error=f"{ack.service}: {ack.error}"
                )
            elif len(json.loads(rows[0]["awaiting"])) == 1:
                await self._finish_clone(ack.namespace_id, ack.task_id, error=None)

    async def _finish_clone(self, namespace_id: str, task_id: str, *, error: str | None) -> None:
        if error is not None:
            await self._append(
                namespace_id,
                [NamespaceCloneFailed(namespace_id=namespace_id, reason=error)],
                expected_version=None,
                namespace_id=namespace_id,
            )
            await self._append(
                task_id,
                [TaskFinished(task_id=task_id, status=TaskStatus.FAILED, error=error)],
                expected_version=None,
                namespace_id=namespace_id,
            )
            return
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT mapping FROM cat_namespaces WHERE namespace_id = $1", namespace_id
            )
        mapping = json.loads(rows[0]["mapping"])
        await self._append(
            namespace_id,
            [NamespaceActivated(namespace_id=namespace_id)],
            expected_version=None,
            namespace_id=namespace_id,
        )
        result = {"namespace_id": namespace_id, "mapping": mapping}
        await self._append(
            task_id,
            [TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED, result=result)],
            expected_version=None,
            namespace_id=namespace_id,
        )

    # ---- tasks -------------------------------------------------------------------------------

    async def task(self, principal: Principal, task_id: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM cat_tasks WHERE task_id = $1 AND organization_id = $2",
                task_id,
                principal.organization_id,
            )
        if not rows or not principal.sees_namespace(rows[0]["namespace_id"]):
            raise NotFoundError(f"task {task_id!r} not found")
        return _task_record(rows[0])

    async def cancel_task(self, principal: Principal, task_id: str) -> dict[str, Any]:
        """Mark an unfinished task CANCELED; its worker stops at its next progress check."""
        principal.require(Permission.WRITE)
        task = await self.task(principal, task_id)
        if TaskStatus(task["status"]).finished:
            raise ConflictError(f"task {task_id} already finished as {task['status']}")
        async with self.lock:
            if task["kind"] == "namespace.clone":  # a canceled clone must not become visible later
                failed = NamespaceCloneFailed(
                    namespace_id=task["namespace_id"], reason="canceled by the user"
                )
                await self._append(
                    task["namespace_id"],
                    [failed],
                    expected_version=None,
                    namespace_id=task["namespace_id"],
                    refresh=False,
                )
            finished = TaskFinished(
                task_id=task_id, status=TaskStatus.CANCELED, error="canceled by the user"
            )
            await self._append(
                task_id, [finished], expected_version=None, namespace_id=task["namespace_id"]
            )
        return await self.task(principal, task_id)

    async def list_tasks(
        self, principal: Principal, *, namespace_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM cat_tasks WHERE organization_id = $1 ORDER BY created_at DESC, task_id LIMIT $2",
                principal.organization_id, limit,
            )  # fmt: skip
        return [
            _task_record(r) for r in rows
            if principal.sees_namespace(r["namespace_id"]) and namespace_id in (None, r["namespace_id"])
        ]  # fmt: skip


def _clone_completed(task_id: str, namespace_id: str, mapping: dict[str, str]) -> TaskFinished:
    result = {"namespace_id": namespace_id, "mapping": mapping}
    return TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED, result=result)


def _namespace_record(row: Any) -> dict[str, Any]:
    return {
        "namespace_id": row["namespace_id"],
        "namespace_name": row["namespace_name"],
        "description": row["description"],
        "status": row["status"],
        "parent_namespace_id": row["parent_namespace_id"],
        "forked_at_position": row["forked_at"],
        "created_at": row["created_at"],
        "created_position": row["created_position"],
    }


def _task_record(row: Any) -> dict[str, Any]:
    return {
        "task_id": row["task_id"],
        "namespace_id": row["namespace_id"],
        "kind": row["kind"],
        "resource_id": row["resource_id"],
        "status": row["status"],
        "progress": {"done": row["done"], "total": row["total"]},
        "result": json.loads(row["result"]),
        "error": row["error"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
