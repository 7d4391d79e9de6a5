"""The retrieval service: retrievers and aliases as events in its own store, executed by the
engine (``services/retrieval/engine``) over the collections the extractor serves.

Commands are handled under one lock per process, appended with idempotent event ids (derived
from the command id) to the namespace's stream ``retrieval-<namespace_id>``, then projected
before the call returns (a caller reads its own writes). The service does not import the
catalog or the extractor: the runtime hands it a ``CollectionDirectory`` (the extractor's read
model: which collections a namespace has, and the vector view a search must use now).

Namespace clones: on ``namespace.forked`` the service copies the parent's retrievers and aliases
into the clone (config only: ids ``derive(clone, old)``, collections mapped the same way, the
vectors are the extractor's forked views) and answers ``namespace.fork_acknowledged`` through
its own outbox.

Aliases carry two optional variants besides their primary retriever: a **canary** (a share
of callers, assigned by hashing their ``user_id``/``session_id``, see ``variants.py``) and a
**shadow** (run in a background task on the same inputs after the primary answered; its
comparison with the primary is an ``alias.shadow_compared`` event, aggregated by the read model).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import JsonValue, ValidationError

from contracts import topics
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.namespaces import NamespaceForkAcknowledged, NamespaceForked
from contracts.retrieval import (
    AliasCreated,
    AliasDeleted,
    AliasMoved,
    AliasVariantChanged,
    ClearVariant,
    CloneRetriever,
    CreateAlias,
    CreateRetriever,
    MoveAlias,
    RetrievalNamespaceForked,
    RetrieverCreated,
    RetrieverDeleted,
    RetrieverUpdated,
    RollbackAlias,
    SetCanary,
    SetShadow,
    UpdateRetriever,
)
from libs.bus import Bus, consume_envelopes
from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.event_codec import to_new_event
from libs.eventstore import EventStore, ProjectionRunner, event_ids_for
from libs.extractors import InferenceCache
from libs.ids import derive
from libs.outbox import OutboxRelay
from libs.vectors import VectorStore, View
from services.retrieval import readmodel, variants
from services.retrieval.engine import (
    CollectionRef,
    ExecutionResult,
    Plan,
    RetrievalEngine,
    RetrieverDefinition,
    StageSpec,
    collection_signature,
)
from services.retrieval.shadow import ShadowRunner

log = logging.getLogger("offshoot.retrieval")

GROUP = "retrieval"
RESOLVE_WAIT_SECONDS = 5.0  # a collection created a moment ago may not be registered yet
PLAN_CACHE_SIZE = 512
# The collections' owner's head as ``execute`` read it, for the signatures of that request.
_request_head: ContextVar[int | None] = ContextVar("retrieval_request_head", default=None)
Variant = Literal["primary", "canary"]
VariantKind = Literal["canary", "shadow"]
VARIANTS: tuple[VariantKind, ...] = ("canary", "shadow")


class CollectionDirectory(Protocol):
    """What the service reads of the extractor (``ExtractorService`` satisfies it)."""

    async def collections(self, namespace_id: str) -> list[dict[str, Any]]: ...

    async def active_view(self, namespace_id: str, collection_id: str) -> View: ...


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _stream(namespace_id: str) -> str:
    return f"retrieval-{namespace_id}"


def parse_stages(stages: Sequence[dict[str, Any]]) -> tuple[StageSpec, ...]:
    """The seed shape into stage specs; a malformed stage is a 422 naming it and the field."""
    specs = []
    for index, raw in enumerate(stages):
        name = raw.get("stage_name") if isinstance(raw, dict) else None
        label = f"stage {name!r}" if isinstance(name, str) else f"stages[{index}]"
        try:
            specs.append(StageSpec.model_validate(raw))
        except ValidationError as failure:
            details = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or '(stage)'}: {error['msg']}"
                for error in failure.errors()
            )
            raise InvalidInputError(f"{label}: {details}") from None
    return tuple(specs)


class RetrievalService:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        vectors: VectorStore,
        inference_cache: InferenceCache,
        directory: CollectionDirectory,
        write_position: Callable[[], Awaitable[int]] | None = None,
        cache_ttl_seconds: float | None = 10.0,
    ) -> None:
        """``write_position``: the position of the last write of the collections' owner (the
        extractor's store head); given, executions and search stages are cached under
        collection signatures built from it, so a write invalidates. Without it nothing is
        cached."""
        self.store = store
        self.bus = bus
        self.directory = directory
        self._write_position = write_position
        self.engine = RetrievalEngine(
            store=vectors,
            inference_cache=inference_cache,
            signature=self._signature if write_position is not None else None,
            cache_ttl_seconds=cache_ttl_seconds,
        )
        self._runner = ProjectionRunner(store, readmodel.RetrievalProjection())
        self._projection_lock = asyncio.Lock()
        self.lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._relay: asyncio.Task[None] | None = None
        self.shadows = ShadowRunner(
            lambda ns, retriever, inputs, limit: self.execute(ns, retriever, inputs, limit=limit),
            lambda ns, compared: self._append_one(ns, compared),
        )
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._plans: OrderedDict[tuple[str, tuple[Any, ...]], Plan] = OrderedDict()
        self._resolved: OrderedDict[
            tuple[str, str], tuple[tuple[int, int], dict[str, Any], Plan]
        ] = OrderedDict()
        self.grpc_port: int | None = None  # set by ``install`` when gRPC is served

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._catch_up()
        self._relay = asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop))
        await consume_envelopes(self.bus, topics.EVENTS, group=GROUP, handler=self.handle)

    def close_with(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` first when the service stops (a front end serving it, e.g. gRPC)."""
        self._closers.append(closer)

    async def stop(self) -> None:
        for closer in self._closers:
            await closer()
        self._stop.set()
        await self.shadows.stop()
        if self._relay is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay

    async def _catch_up(self) -> None:
        async with self._projection_lock:
            await self._runner.catch_up()

    async def _append(
        self, namespace_id: str, events: Sequence[Event], ids: Sequence[uuid.UUID]
    ) -> list[int]:
        new = [
            to_new_event(event, namespace_id=namespace_id, event_id=event_id)
            for event, event_id in zip(events, ids, strict=True)
        ]
        positions = await self.store.append(_stream(namespace_id), new, expected_version=None)
        await self._catch_up()
        return positions

    async def _append_one(self, namespace_id: str, event: Event) -> None:
        """An event no command asked for (a shadow comparison): a fresh id."""
        await self._append(namespace_id, [event], [uuid.uuid4()])

    async def _signature(self, collection: CollectionRef) -> str:
        assert self._write_position is not None
        position = _request_head.get()  # read once per request by ``execute``
        if position is None:
            position = await self._write_position()
        return collection_signature(
            document_count=0,  # not read per query: any write moves ``position``
            last_position=position,
            dimensions={uri: view.space.dimension for uri, view in collection.views.items()},
            schema={
                uri: [(s.owner, s.upto) for s in view.segments]
                for uri, view in collection.views.items()
            },
        )

    # ---- collections -------------------------------------------------------------------------

    async def resolve_collections(self, namespace_id: str, identifiers: Sequence[str]) -> list[str]:
        """Collection ids or names of the namespace → ids (waiting briefly for a collection the
        extractor has not registered yet); unknown ones are a 422 naming them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESOLVE_WAIT_SECONDS
        while True:
            known = await self.directory.collections(namespace_id)
            by_id = {c["collection_id"]: c["collection_id"] for c in known}
            by_name = {c.get("collection_name"): c["collection_id"] for c in known}
            resolved = [by_id.get(i) or by_name.get(i) for i in identifiers]
            missing = [i for i, r in zip(identifiers, resolved, strict=True) if r is None]
            if not missing:
                return list(dict.fromkeys(r for r in resolved if r is not None))
            if loop.time() >= deadline:
                raise InvalidInputError(
                    f"collection_identifiers: no collection {missing} in this namespace"
                )
            await asyncio.sleep(0.05)

    async def _refs(self, namespace_id: str, collection_ids: Sequence[str]) -> list[CollectionRef]:
        refs = []
        known = {c["collection_id"]: c for c in await self.directory.collections(namespace_id)}
        for collection_id in collection_ids:
            found = known.get(collection_id)
            if found is None:
                raise ConflictError(
                    f"collection {collection_id!r} of this retriever no longer exists"
                )
            view = await self.directory.active_view(namespace_id, collection_id)
            refs.append(
                CollectionRef(collection_id=collection_id, views={found["feature_uri"]: view})
            )
        return refs

    async def _plan(
        self,
        namespace_id: str,
        retriever_id: str,
        stages: Sequence[dict[str, Any]],
        collection_ids: Sequence[str],
        input_schema: dict[str, Any] | None,
    ) -> Plan:
        """The engine's plan, reused while the collections' views are unchanged: a retriever id
        names one immutable pipeline, so (id, views) determines the plan, and planning (stage
        and schema validation) is most of a cache hit's cost otherwise."""
        refs = tuple(await self._refs(namespace_id, collection_ids))
        key = (retriever_id, tuple((r.collection_id, tuple(r.views.items())) for r in refs))
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        definition = RetrieverDefinition(
            retriever_id=retriever_id,
            stages=parse_stages(stages),
            collections=refs,
            input_schema=input_schema,
        )
        try:
            plan = self.engine.plan(definition)
        except NotFoundError as unknown:  # an unknown stage id is a mistake in the body
            raise InvalidInputError(str(unknown)) from None
        self._plans[key] = plan
        while len(self._plans) > PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan

    # ---- retrievers --------------------------------------------------------------------------

    async def list_retrievers(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.retrievers(tx, namespace_id)

    async def retriever(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.retriever(tx, namespace_id, identifier)
        if found is None:
            raise NotFoundError(f"retriever {identifier!r} not found")
        return found

    async def _name_taken(self, namespace_id: str, name: str, but: str | None = None) -> None:
        async with self.store.transaction() as tx:
            found = await readmodel.retriever(tx, namespace_id, name)
        if found is not None and found["retriever_id"] != but:
            raise ConflictError(f"a retriever named {name!r} already exists in this namespace")

    async def create_retriever(
        self, namespace_id: str, command: CreateRetriever, *, key_id: str | None,
        cloned_from: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        collection_ids = await self.resolve_collections(
            namespace_id, command.collection_identifiers
        )
        retriever_id = "ret_" + uuid.uuid5(command.command_id, "retriever").hex[:20]
        await self._plan(
            namespace_id, retriever_id, command.stages, collection_ids, command.input_schema
        )
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.retriever(tx, namespace_id, retriever_id)
            if existing is not None:
                return existing  # the same command again
            await self._name_taken(namespace_id, command.retriever_name)
            created = RetrieverCreated(
                namespace_id=namespace_id, retriever_id=retriever_id,
                retriever_name=command.retriever_name, description=command.description,
                tags=command.tags, collection_ids=collection_ids,
                input_schema=command.input_schema, stages=command.stages,
                cloned_from=cloned_from, created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return await self.retriever(namespace_id, retriever_id)

    async def update_retriever(
        self, namespace_id: str, identifier: str, command: UpdateRetriever
    ) -> dict[str, Any]:
        immutable = [
            field
            for field in ("stages", "collection_identifiers", "input_schema")
            if getattr(command, field) is not None
        ]
        if immutable:
            raise ConflictError(
                f"{', '.join(immutable)}: a retriever's pipeline is immutable; clone it "
                f"(POST /v1/retrievers/{{retriever_id}}/clone) with the new value instead"
            )
        async with self.lock:
            found = await self.retriever(namespace_id, identifier)
            if command.retriever_name is not None:
                await self._name_taken(
                    namespace_id, command.retriever_name, but=found["retriever_id"]
                )
            updated = RetrieverUpdated(
                namespace_id=namespace_id, retriever_id=found["retriever_id"],
                retriever_name=command.retriever_name, description=command.description,
                tags=command.tags, updated_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [updated], event_ids_for(command.command_id, 1))
        return await self.retriever(namespace_id, found["retriever_id"])

    async def delete_retriever(self, namespace_id: str, identifier: str) -> None:
        async with self.lock:
            found = await self.retriever(namespace_id, identifier)
            async with self.store.transaction() as tx:
                pointing = [
                    a["alias_name"]
                    for a in await readmodel.aliases(tx, namespace_id)
                    if found["retriever_id"] in _served(a)
                ]
            if pointing:
                raise ConflictError(
                    f"retriever {found['retriever_id']!r} is served by alias(es) {pointing}; "
                    f"(as primary, canary or shadow); move or clear them first"
                )
            deleted = RetrieverDeleted(
                namespace_id=namespace_id, retriever_id=found["retriever_id"]
            )
            await self._append(namespace_id, [deleted], [uuid.uuid4()])

    async def clone_retriever(
        self, namespace_id: str, identifier: str, command: CloneRetriever, *, key_id: str | None
    ) -> dict[str, Any]:
        source = await self.retriever(namespace_id, identifier)
        create = CreateRetriever(
            command_id=command.command_id,
            retriever_name=command.retriever_name or f"{source['retriever_name']}-clone",
            description=(
                command.description if command.description is not None
                else source["description"]
            ),
            tags=command.tags if command.tags is not None else source["tags"],
            collection_identifiers=command.collection_identifiers or source["collection_ids"],
            input_schema=(
                command.input_schema if command.input_schema is not None
                else source["input_schema"]
            ),
            stages=command.stages or source["stages"],
        )  # fmt: skip
        return await self.create_retriever(
            namespace_id, create, key_id=key_id, cloned_from=source["retriever_id"]
        )

    async def _definition_plan(self, namespace_id: str, found: dict[str, Any]) -> Plan:
        return await self._plan(
            namespace_id, found["retriever_id"], found["stages"], found["collection_ids"],
            found["input_schema"],
        )  # fmt: skip

    async def explain(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        found = await self.retriever(namespace_id, identifier)
        plan = await self._definition_plan(namespace_id, found)
        return {"retriever_id": found["retriever_id"], "plan": plan.explain()}

    async def execute(
        self,
        namespace_id: str,
        identifier: str,
        inputs: dict[str, JsonValue],
        *,
        limit: int | None = None,
    ) -> dict[str, Any]:
        if self._write_position is None:
            found = await self.retriever(namespace_id, identifier)
            plan = await self._definition_plan(namespace_id, found)
            return _presented(await self.engine.execute(plan, inputs), found, limit)
        heads = (await self.store.head_position(), await self._write_position())
        token = _request_head.set(heads[1])
        try:
            found, plan = await self._resolve(namespace_id, identifier, heads)
            result = await self.engine.execute(plan, inputs)
        finally:
            _request_head.reset(token)
        return _presented(result, found, limit)

    async def _resolve(
        self, namespace_id: str, identifier: str, heads: tuple[int, int]
    ) -> tuple[dict[str, Any], Plan]:
        """The retriever and its plan, reused while neither this service's store nor the
        collections' owner has written since (``heads``): every retriever change and every
        vector write is preceded by an event in one of them. This is what keeps a cache hit
        to two head reads instead of five read-model queries."""
        key = (namespace_id, identifier)
        memo = self._resolved.get(key)
        if memo is not None and memo[0] == heads:
            self._resolved.move_to_end(key)
            return memo[1], memo[2]
        found = await self.retriever(namespace_id, identifier)
        plan = await self._definition_plan(namespace_id, found)
        self._resolved[key] = (heads, found, plan)
        while len(self._resolved) > PLAN_CACHE_SIZE:
            self._resolved.popitem(last=False)
        return found, plan

    def stages(self) -> list[dict[str, Any]]:
        return [description.model_dump(mode="json") for description in self.engine.stages()]

    # ---- aliases -----------------------------------------------------------------------------

    async def list_aliases(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return [_alias(a) for a in await readmodel.aliases(tx, namespace_id)]

    async def _alias_row(self, namespace_id: str, alias_name: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.alias(tx, namespace_id, alias_name)
        if found is None:
            raise NotFoundError(f"alias {alias_name!r} not found")
        return found

    async def alias(self, namespace_id: str, alias_name: str) -> dict[str, Any]:
        return _alias(await self._alias_row(namespace_id, alias_name))

    async def create_alias(
        self, namespace_id: str, command: CreateAlias, *, key_id: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.alias(tx, namespace_id, command.alias_name)
            alias_id = "ali_" + uuid.uuid5(command.command_id, "alias").hex[:20]
            if existing is not None:
                if existing["alias_id"] == alias_id:
                    return _alias(existing)
                raise ConflictError(f"alias {command.alias_name!r} already exists; move it")
            target = await self.retriever(namespace_id, command.retriever_id)
            created = AliasCreated(
                namespace_id=namespace_id, alias_id=alias_id, alias_name=command.alias_name,
                retriever_id=target["retriever_id"], description=command.description,
                created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return await self.alias(namespace_id, command.alias_name)

    async def move_alias(
        self, namespace_id: str, alias_name: str, command: MoveAlias, *, key_id: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            target = await self.retriever(namespace_id, command.retriever_id)
            await self._move(
                namespace_id, current, target["retriever_id"], "move", command.reason, key_id,
                command.command_id,
            )  # fmt: skip
        return await self.alias(namespace_id, alias_name)

    async def rollback_alias(
        self, namespace_id: str, alias_name: str, command: RollbackAlias, *, key_id: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            previous = current.get("previous_retriever_id")
            if previous is None:
                raise ConflictError(
                    f"alias {alias_name!r} has never moved; nothing to roll back to"
                )
            await self.retriever(namespace_id, previous)  # deleted since: 404 says so
            await self._move(
                namespace_id, current, previous, "rollback", command.reason, key_id,
                command.command_id,
            )  # fmt: skip
        return await self.alias(namespace_id, alias_name)

    async def _move(
        self, namespace_id: str, current: dict[str, Any], to: str, kind: str, reason: str,
        key_id: str | None, command_id: uuid.UUID,
    ) -> None:  # fmt: skip
        """Move the primary; a canary or shadow on the new primary ends with the move (a
        promoted canary), recorded as its own change."""
        events: list[Event] = [AliasMoved(
            namespace_id=namespace_id, alias_id=current["alias_id"],
            alias_name=current["alias_name"], from_retriever_id=current["retriever_id"],
            to_retriever_id=to, kind="rollback" if kind == "rollback" else "move",
            reason=reason, moved_by=key_id, moved_at=_now(),
        )]  # fmt: skip
        for variant in VARIANTS:
            if (current.get(variant) or {}).get("retriever_id") == to:
                events.append(_variant_change(
                    current, variant, None, None, f"{to} became the primary", key_id
                ))  # fmt: skip
        await self._append(namespace_id, events, event_ids_for(command_id, len(events)))

    async def set_canary(
        self, namespace_id: str, alias_name: str, command: SetCanary, *, key_id: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            target = await self._variant_target(namespace_id, current, command.retriever_id)
            change = _variant_change(
                current, "canary", target, command.percent, command.reason, key_id
            )
            await self._append(namespace_id, [change], event_ids_for(command.command_id, 1))
        return await self.alias(namespace_id, alias_name)

    async def set_shadow(
        self, namespace_id: str, alias_name: str, command: SetShadow, *, key_id: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            target = await self._variant_target(namespace_id, current, command.retriever_id)
            change = _variant_change(current, "shadow", target, None, command.reason, key_id)
            await self._append(namespace_id, [change], event_ids_for(command.command_id, 1))
        return await self.alias(namespace_id, alias_name)

    async def clear_variant(
        self, namespace_id: str, alias_name: str, variant: VariantKind,
        command: ClearVariant, *, key_id: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            if current.get(variant) is None:
                raise NotFoundError(f"alias {alias_name!r} has no {variant}")
            change = _variant_change(current, variant, None, None, command.reason, key_id)
            await self._append(namespace_id, [change], event_ids_for(command.command_id, 1))
        return await self.alias(namespace_id, alias_name)

    async def _variant_target(
        self, namespace_id: str, current: dict[str, Any], identifier: str
    ) -> str:
        target: str = (await self.retriever(namespace_id, identifier))["retriever_id"]
        if target == current["retriever_id"]:
            raise InvalidInputError(
                f"retriever_id: alias {current['alias_name']!r} already serves {target} as its "
                f"primary"
            )
        return target

    async def shadow_report(self, namespace_id: str, alias_name: str) -> dict[str, Any]:
        """What the alias's shadows measured: per (primary, shadow) pair the number of
        comparisons and the means of overlap@k, rank shift and latency delta; the latest few."""
        current = await self._alias_row(namespace_id, alias_name)
        async with self.store.transaction() as tx:
            summary = await readmodel.shadow_summary(tx, current["alias_id"])
            recent = await readmodel.recent_comparisons(tx, current["alias_id"])
        return {
            "alias_name": current["alias_name"], "alias_id": current["alias_id"],
            "retriever_id": current["retriever_id"], "shadow": current.get("shadow"),
            "results": summary, "recent": recent,
        }  # fmt: skip

    async def delete_alias(self, namespace_id: str, alias_name: str) -> None:
        async with self.lock:
            current = await self._alias_row(namespace_id, alias_name)
            deleted = AliasDeleted(
                namespace_id=namespace_id, alias_id=current["alias_id"],
                alias_name=current["alias_name"],
            )  # fmt: skip
            await self._append(namespace_id, [deleted], [uuid.uuid4()])

    async def alias_history(self, namespace_id: str, alias_name: str) -> dict[str, Any]:
        current = await self._alias_row(namespace_id, alias_name)
        async with self.store.transaction() as tx:
            moves = await readmodel.alias_history(tx, current["alias_id"])
        return {"alias_name": current["alias_name"], "alias_id": current["alias_id"],
                "results": moves}  # fmt: skip

    async def execute_alias(
        self,
        namespace_id: str,
        alias_name: str,
        inputs: dict[str, JsonValue],
        *,
        limit: int | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Execute the retriever the caller is assigned to (``variant``: primary or canary;
        a caller with neither ``user_id`` nor ``session_id`` is assigned at random), then, if the
        alias has a shadow, schedule it on the same inputs; the shadow never touches this
        response."""
        current = await self._alias_row(namespace_id, alias_name)
        served, variant = _assigned(current, user_id if user_id is not None else session_id)
        result = await self.execute(namespace_id, served, inputs, limit=limit)
        shadow = (current.get("shadow") or {}).get("retriever_id")
        if shadow is not None and shadow != served:
            self.shadows.schedule(namespace_id, current, shadow, inputs, limit, result)
        return result | {
            "alias_name": current["alias_name"],
            "served_by": served,
            "variant": variant,
        }

    # ---- namespace clones --------------------------------------------------------------------

    async def handle(self, envelope: Envelope) -> None:
        if envelope.type == NamespaceForked.type_name:
            await self._on_namespace_forked(NamespaceForked.model_validate(envelope.data), envelope)

    async def _on_namespace_forked(self, event: NamespaceForked, envelope: Envelope) -> None:
        error: str | None = None
        mapping: dict[str, str] = {}
        try:
            mapping = await self._fork_namespace(event, envelope)
        except Exception as failure:  # the clone must hear about it, not wait forever
            log.exception(
                "fork of %s into %s failed", event.parent_namespace_id, event.namespace_id
            )
            error = f"{type(failure).__name__}: {failure}"
        # Event ids are global: the extractor derives its own from the same envelope, so ours
        # carry the service's name (the bus dedupes by event id).
        ack = NamespaceForkAcknowledged(
            namespace_id=event.namespace_id, service=GROUP, task_id=event.task_id,
            mapping=mapping, error=error,
        )  # fmt: skip
        await self._append(
            event.namespace_id, [ack], [uuid.uuid5(envelope.event_id, "retrieval-ack")]
        )

    async def _fork_namespace(self, event: NamespaceForked, envelope: Envelope) -> dict[str, str]:
        """Copy the parent's retrievers and aliases (config only) with derived ids. The state
        copied is the parent's when the fork is handled (retrievers are not tied to catalog
        positions)."""
        clone, parent = event.namespace_id, event.parent_namespace_id
        async with self.lock:
            async with self.store.transaction() as tx:
                retrievers = (
                    await readmodel.retrievers(tx, parent)
                    if event.include_resources.retrievers
                    else []
                )
                aliases = await readmodel.aliases(tx, parent) if retrievers else []
            mapping = {r["retriever_id"]: derive(clone, r["retriever_id"]) for r in retrievers}
            events: list[Event] = []
            for found in retrievers:
                events.append(RetrieverCreated(
                    namespace_id=clone, retriever_id=mapping[found["retriever_id"]],
                    retriever_name=found["retriever_name"], description=found["description"],
                    tags=found["tags"],
                    collection_ids=[derive(clone, c) for c in found["collection_ids"]],
                    input_schema=found["input_schema"], stages=found["stages"],
                    cloned_from=found["cloned_from"] and mapping.get(found["cloned_from"]),
                    created_by=found["created_by"], created_at=found["created_at"],
                ))  # fmt: skip
            for current in aliases:
                if current["retriever_id"] not in mapping:
                    continue
                new_alias = derive(clone, current["alias_id"])
                mapping[current["alias_id"]] = new_alias
                created = AliasCreated(
                    namespace_id=clone, alias_id=new_alias, alias_name=current["alias_name"],
                    retriever_id=mapping[current["retriever_id"]],
                    description=current["description"], created_by=current["created_by"],
                    created_at=_now(),
                )  # fmt: skip
                events.append(created)
                for variant in VARIANTS:
                    setting = current.get(variant) or {}
                    if setting.get("retriever_id") in mapping:
                        events.append(_variant_change(
                            created.model_dump(), variant, mapping[setting["retriever_id"]],
                            setting.get("percent"), "copied from the parent namespace",
                            current["created_by"],
                        ))  # fmt: skip
            events.insert(0, RetrievalNamespaceForked(
                namespace_id=clone, parent_namespace_id=parent, at_position=event.at_position,
                mapping=mapping,
            ))  # fmt: skip
            ids = [uuid.uuid5(envelope.event_id, f"retrieval-fork-{i}") for i in range(len(events))]
            await self._append(clone, events, ids)
        return mapping


def _alias(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: row.get(key)
        for key in ("alias_id", "alias_name", "retriever_id", "previous_retriever_id",
                    "canary", "shadow", "description", "created_by", "created_at")
    }  # fmt: skip


def _served(alias: dict[str, Any]) -> set[str]:
    """Every retriever the alias runs: primary, canary, shadow."""
    variants_ = (alias.get("canary"), alias.get("shadow"))
    return {alias["retriever_id"]} | {v["retriever_id"] for v in variants_ if v}


def _assigned(alias: dict[str, Any], caller: str | None) -> tuple[str, Variant]:
    canary = alias.get("canary")
    if canary is None:
        return alias["retriever_id"], "primary"
    key = caller if caller is not None else uuid.uuid4().hex
    if variants.in_canary(alias["alias_id"], key, float(canary["percent"])):
        return canary["retriever_id"], "canary"
    return alias["retriever_id"], "primary"


def _variant_change(
    current: dict[str, Any], variant: VariantKind, retriever_id: str | None,
    percent: float | None, reason: str, key_id: str | None,
) -> AliasVariantChanged:  # fmt: skip
    return AliasVariantChanged(
        namespace_id=current["namespace_id"], alias_id=current["alias_id"],
        alias_name=current["alias_name"], variant=variant, retriever_id=retriever_id,
        percent=percent, previous_retriever_id=(current.get(variant) or {}).get("retriever_id"),
        reason=reason, changed_by=key_id, changed_at=_now(),
    )  # fmt: skip


def _presented(result: ExecutionResult, found: dict[str, Any], limit: int | None) -> dict[str, Any]:
    documents = result.documents if limit is None else result.documents[:limit]
    return {
        "retriever_id": found["retriever_id"],
        "retriever_name": found["retriever_name"],
        "results": [d.model_dump(mode="json") for d in documents],
        "stages": [s.model_dump(mode="json") for s in result.stages],
        "feature_uris": list(result.feature_uris),
        "cache": result.cache.model_dump(mode="json"),
        "duration_ms": result.duration_ms,
    }


__all__ = ["CollectionDirectory", "RetrievalService", "parse_stages"]
