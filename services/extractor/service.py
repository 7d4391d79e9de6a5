"""The extractor service: reacts to catalog events, owns documents and their vectors.

Every vector write is backed by an event appended first to the extractor's own store; the
event's global position is the ``position`` the vector store records (``born``/``died``), so
vector views and the document read model share one clock. Handlers are idempotent: event ids
are derived from the envelope id, appends of known ids are no-ops that return the original
positions, vector writes at a known position land on the same point ids, and the inference
cache makes re-embedding free.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from contracts import topics
from contracts.base import Event
from contracts.catalog import (
    CollectionCreated,
    CollectionDeleted,
    CollectionTriggered,
    FeatureExtractorSpec,
    ObjectDeleted,
    ObjectStored,
)
from contracts.envelope import Envelope
from contracts.extractor import (
    BatchFinished,
    BatchStarted,
    DocumentsDeleted,
    DocumentsWritten,
    ExtractorCollectionDropped,
    ExtractorCollectionRegistered,
    ExtractorNamespaceRegistered,
    GenerationActivated,
    VectorSpace,
    ViewMaterialised,
)
from contracts.namespaces import NamespaceForkAcknowledged, NamespaceForked
from contracts.tasks import TaskCreated, TaskFinished, TaskProgressed, TaskStatus
from libs import telemetry
from libs.bus import Bus, consume_envelopes
from libs.errors import ConflictError, NotFoundError
from libs.event_codec import to_new_event
from libs.eventstore import EventStore, ProjectionRunner
from libs.extractors import CachedExtractor, InferenceCache, get_extractor
from libs.ids import derive, new_id
from libs.outbox import OutboxRelay
from libs.sources import SourceReader
from libs.vectors import SpaceSpec, VectorStore, View
from libs.views import View as RowView
from services.extractor import inbox, readmodel
from services.extractor.pipeline import Input, Outcome, document_input, extract, object_input

log = logging.getLogger("offshoot.extractor")

GROUP = "extractor"
SPARSE_VOCABULARY = 1 << 31
PAGE_SIZE = 256
#: Live objects processed together: one append and one vector upsert per chunk and generation.
CHUNK_SIZE = 256
_BATCH_NS = uuid.UUID("0b8e7c1a-7a55-5e0f-9a51-3f1c2d9e4b70")
Source = tuple[str, int] | None


def space_spec(space: VectorSpace | dict[str, Any]) -> SpaceSpec:
    data = space.model_dump() if isinstance(space, VectorSpace) else space
    return SpaceSpec.model_validate(data)


def generation_owner(collection_id: str, batch_id: str) -> str:
    """The view owner a trigger writes its new generation under."""
    return f"{collection_id}.{batch_id}"


def _batch_of(owner: str) -> str | None:
    return owner.split(".", 1)[1] if "." in owner else None


def _count_written(outcome: Outcome, kind: str) -> None:
    """``offshoot.extractor.documents``: documents written (counted once, not per generation)."""
    if outcome.documents:
        telemetry.instruments().documents.add(len(outcome.documents), {"offshoot.batch.kind": kind})


def _ids(cause: uuid.UUID, *names: str) -> list[uuid.UUID]:
    return [uuid.uuid5(cause, name) for name in names]


class ExtractorService:
    def __init__(
        self,
        store: EventStore,
        vectors: VectorStore,
        bus: Bus,
        sources: SourceReader,
        cache: InferenceCache,
        *,
        page_size: int = PAGE_SIZE,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.store = store
        self.vectors = vectors
        self.bus = bus
        self.sources = sources
        self.cache = cache
        self.page_size = page_size
        self.chunk_size = chunk_size
        self._runner = ProjectionRunner(store, readmodel.ExtractorProjection())
        self._projection_lock = asyncio.Lock()
        self._extractors: dict[str, CachedExtractor] = {}
        self._by_spec: dict[str, CachedExtractor] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._drain_locks: dict[str, asyncio.Lock] = {}
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._deleted: dict[str, set[str]] = {}
        self._stop = asyncio.Event()
        self._relay: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Catch the read model up, resume interrupted batches, then consume and relay."""
        await self._catch_up()
        await inbox.create(self.store)
        for namespace_id in await inbox.pending_namespaces(self.store):
            self._kick(namespace_id)
        async with self.store.transaction() as tx:
            running = await readmodel.running_batches(tx)
        for batch in running:
            self._start_run(batch["namespace_id"], batch["collection_id"], batch["batch_id"])
        self._relay = asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop))
        await consume_envelopes(self.bus, topics.EVENTS, group=GROUP, handler=self.handle)

    async def stop(self) -> None:
        for task in [*self._runs.values(), *self._drains.values()]:
            task.cancel()
        for task in [*self._runs.values(), *self._drains.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._stop.set()
        if self._relay is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay

    async def idle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (a test/ops helper)
        """Wait until no trigger batch runs and the inbox is drained (tests and shutdown)."""
        async with asyncio.timeout(timeout):
            while self._runs or self._drains:
                await asyncio.gather(
                    *self._runs.values(), *self._drains.values(), return_exceptions=True
                )

    # ---- plumbing ----------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        async with self._projection_lock:
            await self._runner.catch_up()

    async def _append(
        self,
        namespace_id: str,
        events: Sequence[Event],
        ids: Sequence[uuid.UUID],
        *,
        source: Source = None,
        causation: uuid.UUID | None = None,
    ) -> list[int]:
        """Store events (idempotent by id), fold them into the read model, return positions."""
        new = []
        for event, event_id in zip(events, ids, strict=True):
            stored = to_new_event(
                event, namespace_id=namespace_id, event_id=event_id, causation_id=causation
            )
            if source is not None:
                stored.metadata.update(source_namespace=source[0], source_position=source[1])
            new.append(stored)
        positions = await self.store.append(f"extractor-{namespace_id}", new, expected_version=None)
        await self._catch_up()
        return positions

    def extractor_for(self, spec: dict[str, Any]) -> CachedExtractor:
        """One cached extractor per configuration (the model itself loads once per process).

        Memoised by the spec as given: describing an extractor (its config hash, parameter
        schema) costs milliseconds, which per object was half the live-ingestion overhead."""
        spec_key = json.dumps(spec, sort_keys=True, default=str)
        if (known := self._by_spec.get(spec_key)) is not None:
            return known
        parsed = FeatureExtractorSpec.model_validate(spec)
        base = get_extractor(parsed.feature_extractor_name, parsed.version, parsed.parameters)
        key = base.info.config_hash
        if key not in self._extractors:
            self._extractors[key] = CachedExtractor(base, self.cache)
        self._by_spec[spec_key] = self._extractors[key]
        return self._extractors[key]

    async def _view(self, space: dict[str, Any], owner: str) -> View:
        return await self.vectors.get_view(space=space_spec(space), owner=owner)

    # ---- reads -------------------------------------------------------------------------------

    async def collection(self, namespace_id: str, collection_id: str) -> dict[str, Any] | None:
        async with self.store.transaction() as tx:
            return await readmodel.collection(tx, namespace_id, collection_id)

    async def collections(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.collections(tx, namespace_id)

    async def active_view(self, namespace_id: str, collection_id: str) -> View:
        """The vector view a search of the collection must use now (the active generation)."""
        found = await self.collection(namespace_id, collection_id)
        if found is None:
            raise NotFoundError(f"collection {collection_id!r} is not known to the extractor")
        return await self._view(found["space"], found["owner"])

    async def _row_view(self, space: dict[str, Any], owner: str) -> RowView:
        view = await self._view(space, owner)
        return readmodel.row_view([(s.owner, s.upto) for s in view.segments], owner)

    # ---- event handling ----------------------------------------------------------------------

    async def handle(self, envelope: Envelope) -> None:
        """The bus handler: one catalog event in, extractor events and vector writes out."""
        namespace_id = envelope.namespace_id
        if namespace_id is None:
            return
        source: Source = (namespace_id, envelope.global_position or 0)
        if envelope.type == ObjectStored.type_name:
            position = envelope.global_position or 0
            await inbox.put(self.store, envelope.event_id, namespace_id, position, envelope.data)
            self._kick(namespace_id)
            return
        # Everything else of the namespace happens after the objects received before it.
        if envelope.type == NamespaceForked.type_name:
            forked = NamespaceForked.model_validate(envelope.data)
            await self._drain(forked.parent_namespace_id, split_at=forked.at_position)
        await self._drain(namespace_id)
        match envelope.type:
            case CollectionCreated.type_name:
                event = CollectionCreated.model_validate(envelope.data)
                await self._on_collection_created(namespace_id, event, envelope, source)
            case ObjectDeleted.type_name:
                deleted = ObjectDeleted.model_validate(envelope.data)
                await self._delete_object(
                    namespace_id, deleted.object_id, envelope.event_id, source
                )
            case CollectionTriggered.type_name:
                triggered = CollectionTriggered.model_validate(envelope.data)
                await self._on_triggered(namespace_id, triggered, envelope, source)
            case NamespaceForked.type_name:
                await self._on_namespace_forked(
                    NamespaceForked.model_validate(envelope.data), envelope
                )
            case CollectionDeleted.type_name:
                dropped = CollectionDeleted.model_validate(envelope.data)
                await self._on_collection_deleted(namespace_id, dropped, envelope, source)
            case _:
                pass

    async def _on_collection_created(
        self, namespace_id: str, event: CollectionCreated, envelope: Envelope, source: Source
    ) -> None:
        if await self.collection(namespace_id, event.collection_id) is not None:
            return
        info = self.extractor_for(event.feature_extractor.model_dump()).info
        output = info.outputs[0]
        async with self.store.transaction() as tx:
            root = await readmodel.lineage_root(tx, namespace_id)
            parent = (
                await readmodel.collection(tx, namespace_id, event.shares_vectors_with)
                if event.shares_vectors_with
                else None
            )
        space = VectorSpace(
            lineage_root=root, feature_uri=output.feature_uri, kind=output.kind,
            dimension=output.dimensions or SPARSE_VOCABULARY,
            distance=output.distance if output.kind == "dense" else None,
            idf=output.modifier == "idf",
        )  # fmt: skip
        await self.vectors.ensure_space(
            spec=space_spec(space),
            indexes={"root_object_id": "keyword", "collection_id": "keyword"},
        )
        shares = parent is not None and parent["space"] == space.model_dump()
        registered = ExtractorCollectionRegistered(
            namespace_id=namespace_id, collection_id=event.collection_id,
            collection_name=event.collection_name,
            feature_extractor=event.feature_extractor.model_dump(), feature_uri=output.feature_uri,
            source=event.source.model_dump(), space=space, owner=event.collection_id,
            forked_from=parent["owner"] if shares and parent else None,
            forked_at=await self.store.head_position() if shares else None,
            status=event.status, source_position=source[1] if source else 0,
        )  # fmt: skip
        await self._append(namespace_id, [registered], _ids(envelope.event_id, "registered"),
                           source=source, causation=envelope.event_id)  # fmt: skip
        await self._open_view(namespace_id, event.collection_id)
        if not shares:
            await self._backfill(namespace_id, event.collection_id, envelope.event_id, source)

    async def _backfill(
        self, namespace_id: str, collection_id: str, cause: uuid.UUID, source: Source
    ) -> None:
        """A new collection whose source already holds inputs processes them in a background
        batch (kind ``backfill``) written straight into its first generation: live objects
        arrive beside it (same document ids, so an object seen by both is written twice, not
        duplicated) and deletions are skipped by the batch like a trigger's."""
        found = await self._known(namespace_id, collection_id)
        if not await self._has_inputs(namespace_id, found):
            return
        batch_id = "bat_" + uuid.uuid5(_BATCH_NS, f"backfill\x00{collection_id}").hex[:20]
        started = BatchStarted(namespace_id=namespace_id, collection_id=collection_id,
                               batch_id=batch_id, owner=found["owner"], kind="backfill")  # fmt: skip
        await self._append(namespace_id, [started], _ids(cause, "backfill"), source=source,
                           causation=cause)  # fmt: skip
        self._start_run(namespace_id, collection_id, batch_id)

    async def _has_inputs(self, namespace_id: str, found: dict[str, Any]) -> bool:
        src = found["source"]
        if src.get("type") == "bucket":
            first = await self.sources.bucket_objects(
                namespace_id=namespace_id, bucket_id=src["bucket_id"], limit=1
            )
            return bool(first)
        return await self._total(namespace_id, found) > 0

    async def _open_view(self, namespace_id: str, collection_id: str) -> None:
        """Create (or fork, as recorded) the collection's first view; idempotent."""
        found = await self.collection(namespace_id, collection_id)
        assert found is not None
        spec = space_spec(found["space"])
        if found["forked_from"] is None:
            await self.vectors.create_view(space=spec, owner=found["owner"])
        else:
            parent = await self.vectors.get_view(space=spec, owner=found["forked_from"])
            await self.vectors.fork_view(
                parent=parent, owner=found["owner"], at_position=found["forked_at"]
            )

    # ---- live ingestion: the inbox, drained in chunks ------------------------------------------

    def _kick(self, namespace_id: str) -> None:
        """Make sure a drain loop runs for the namespace (one at a time)."""
        running = self._drains.get(namespace_id)
        if running is None or running.done():
            task = asyncio.create_task(self._drain_loop(namespace_id), name=f"drain/{namespace_id}")
            self._drains[namespace_id] = task
            task.add_done_callback(lambda _: self._drain_ended(namespace_id, task))

    def _drain_ended(self, namespace_id: str, task: asyncio.Task[None]) -> None:
        if self._drains.get(namespace_id) is task:
            del self._drains[namespace_id]

    async def _drain_loop(self, namespace_id: str) -> None:
        """Drain in the background; a failing chunk is retried with backoff (it stays claimed,
        so the retry is the same chunk and cannot write twice)."""
        delay = 0.05
        while not self._stop.is_set():
            try:
                await self._drain(namespace_id)
                return
            except Exception:
                log.exception("live ingestion of namespace %s failed; retrying", namespace_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _drain(self, namespace_id: str, *, split_at: int | None = None) -> None:
        """Process every object recorded for the namespace, chunk by chunk, in catalog order."""
        lock = self._drain_locks.setdefault(namespace_id, asyncio.Lock())
        async with lock:
            while claimed := await inbox.claim(
                self.store, namespace_id, limit=self.chunk_size, split_at=split_at
            ):
                chunk, rows = claimed
                await self._on_objects_stored(namespace_id, chunk, rows)
                await inbox.finish(self.store, chunk)

    async def _on_objects_stored(
        self, namespace_id: str, chunk: uuid.UUID, rows: list[dict[str, Any]]
    ) -> None:
        """One chunk of ``object.stored`` events: each collection sourced from an object's
        bucket embeds its share of the chunk in one go."""
        events = [ObjectStored.model_validate(row["data"]) for row in rows]
        first = events[0]
        if first.replaces is not None:  # only a chunk's first object may replace one
            source0: Source = (namespace_id, rows[0]["source_position"])
            await self._delete_object(namespace_id, first.replaces, rows[0]["event_id"], source0)
        source: Source = (namespace_id, rows[0]["source_position"])
        for found in await self.collections(namespace_id):
            if found["source"].get("type") != "bucket":
                continue
            mappings = found["feature_extractor"].get("input_mappings") or {"text": "text"}
            items = [
                object_input(event.object_id, event.bucket_id, event.fields,
                             [blob.model_dump() for blob in event.blobs], mappings)
                for event in events
                if event.bucket_id == found["source"].get("bucket_id")
            ]  # fmt: skip
            if items:
                await self._ingest(namespace_id, found, items, chunk, source)

    async def _ingest(
        self,
        namespace_id: str,
        found: dict[str, Any],
        inputs: list[Input],
        cause: uuid.UUID,
        source: Source,
    ) -> None:
        """Live ingestion: write to the active generation and every generation being built (so
        a running trigger loses nothing), then feed collections whose source is this one."""
        collection_id = found["collection_id"]
        extractor = self.extractor_for(found["feature_extractor"])
        outcome = await extract(extractor, collection_id, inputs, batch_id=None)
        owners = [found["owner"], *found["pending"]]
        events = [self._written(namespace_id, collection_id, owner, outcome, active=owner == found["owner"])
                  for owner in owners]  # fmt: skip
        key = uuid.uuid5(cause, collection_id)
        positions = await self._append(
            namespace_id, events, _ids(key, *owners), source=source, causation=cause
        )
        _count_written(outcome, "ingest")
        for owner, position in zip(owners, positions, strict=True):
            if outcome.points:
                view = await self._view(found["space"], owner)
                await self.vectors.upsert(view=view, points=outcome.points, position=position)
        if not outcome.points:
            return
        for downstream in await self.collections(namespace_id):
            if downstream["source"].get("collection_id") != collection_id:
                continue
            items = [document_input(collection_id, point.document_id, point.payload)
                     for point in outcome.points]  # fmt: skip
            await self._ingest(namespace_id, downstream, items, key, source)

    @staticmethod
    def _written(
        namespace_id: str, collection_id: str, owner: str, outcome: Outcome, *, active: bool
    ) -> DocumentsWritten:
        return DocumentsWritten(
            namespace_id=namespace_id, collection_id=collection_id, owner=owner,
            batch_id=None if active else _batch_of(owner), documents=outcome.documents,
            failures=outcome.failures, model_calls=outcome.model_calls if active else 0,
            cache_hits=outcome.cache_hits if active else 0,
            cache_misses=outcome.cache_misses if active else 0,
        )  # fmt: skip

    async def _delete_object(
        self, namespace_id: str, object_id: str, cause: uuid.UUID, source: Source
    ) -> None:
        """Delete an object's documents from every collection (all tiers, all generations)."""
        events: list[Event] = []
        names: list[str] = []
        targets: list[tuple[dict[str, Any], str, list[str]]] = []
        for found in await self.collections(namespace_id):
            for batch_id, run in self._runs.items():  # running triggers and back-fills skip it
                if run.get_name() == f"{namespace_id}/{found['collection_id']}":
                    self._deleted.setdefault(batch_id, set()).add(object_id)
            for owner in [found["owner"], *found["pending"]]:
                rows_view = await self._row_view(found["space"], owner)
                async with self.store.transaction() as tx:
                    rows = await readmodel.visible_documents(
                        tx, rows_view, where="root_object_id = $1", args=(object_id,)
                    )
                if rows:
                    ids = [row["document_id"] for row in rows]
                    targets.append((found, owner, ids))
                    names.append(f"delete:{object_id}:{owner}")
                    events.append(DocumentsDeleted(
                        namespace_id=namespace_id, collection_id=found["collection_id"],
                        owner=owner, document_ids=ids, root_object_id=object_id,
                    ))  # fmt: skip
        if not events:
            return
        positions = await self._append(namespace_id, events, _ids(cause, *names),
                                       source=source, causation=cause)  # fmt: skip
        for (found, owner, ids), position in zip(targets, positions, strict=True):
            target = await self._view(found["space"], owner)
            target = await self.vectors.delete(view=target, document_ids=ids, position=position)
            if owner == found["owner"] and self.vectors.needs_materialise(target):
                self._start_materialise(namespace_id, found["collection_id"], task_id=None)

    async def _on_collection_deleted(
        self, namespace_id: str, event: CollectionDeleted, envelope: Envelope, source: Source
    ) -> None:
        for batch_id, task in list(self._runs.items()):
            if task.get_name() == f"{namespace_id}/{event.collection_id}":
                task.cancel()
                self._runs.pop(batch_id, None)
        dropped = ExtractorCollectionDropped(
            namespace_id=namespace_id, collection_id=event.collection_id
        )
        await self._append(namespace_id, [dropped], _ids(envelope.event_id, "dropped"),
                           source=source, causation=envelope.event_id)  # fmt: skip

    # ---- triggers ----------------------------------------------------------------------------

    async def _on_triggered(
        self, namespace_id: str, event: CollectionTriggered, envelope: Envelope, source: Source
    ) -> None:
        async with self.store.transaction() as tx:
            found = await readmodel.collection(tx, namespace_id, event.collection_id)
            known = await readmodel.batch(tx, event.batch_id)
        if known is not None:
            if known["status"] == "PROCESSING" and event.batch_id not in self._runs:
                self._start_run(namespace_id, event.collection_id, event.batch_id)
            return
        if found is None:
            finished = TaskFinished(task_id=event.task_id, status=TaskStatus.FAILED,
                                    error=f"collection {event.collection_id!r} is unknown to the extractor")  # fmt: skip
            await self._append(namespace_id, [finished], _ids(envelope.event_id, "unknown"))
            return
        owner = generation_owner(event.collection_id, event.batch_id)
        await self.vectors.create_view(space=space_spec(found["space"]), owner=owner)
        started = BatchStarted(
            namespace_id=namespace_id, collection_id=event.collection_id,
            batch_id=event.batch_id, task_id=event.task_id, owner=owner,
        )  # fmt: skip
        progress = TaskProgressed(task_id=event.task_id, status=TaskStatus.PROCESSING, done=0)
        await self._append(namespace_id, [started, progress], _ids(envelope.event_id, "started", "progress"),
                           source=source, causation=envelope.event_id)  # fmt: skip
        self._start_run(namespace_id, event.collection_id, event.batch_id)

    def _start_run(self, namespace_id: str, collection_id: str, batch_id: str) -> None:
        task = asyncio.create_task(
            self._run_batch(namespace_id, collection_id, batch_id),
            name=f"{namespace_id}/{collection_id}",
        )
        self._runs[batch_id] = task
        task.add_done_callback(lambda _: self._finished_run(batch_id, task))

    def _finished_run(self, batch_id: str, task: asyncio.Task[None]) -> None:
        if self._runs.get(batch_id) is task:
            del self._runs[batch_id]
        self._deleted.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch %s failed: %s", batch_id, task.exception())

    async def _pages(self, namespace_id: str, found: dict[str, Any]) -> AsyncIterator[list[Input]]:
        """The collection's whole source, page by page, as inputs."""
        src = found["source"]
        mappings = found["feature_extractor"].get("input_mappings") or {"text": "text"}
        if src.get("type") == "bucket":
            after: str | None = None
            while True:
                page = await self.sources.bucket_objects(
                    namespace_id=namespace_id, bucket_id=src["bucket_id"], after=after,
                    limit=self.page_size,
                )  # fmt: skip
                if not page:
                    return
                yield [
                    object_input(o.object_id, o.bucket_id, o.fields, o.blobs, mappings)
                    for o in page
                ]
                after = page[-1].object_id
        else:
            upstream = await self.collection(namespace_id, src["collection_id"])
            if upstream is None:
                return
            view = await self._view(upstream["space"], upstream["owner"])
            offset: str | None = None
            while True:
                scrolled = await self.vectors.scroll(view=view, limit=self.page_size, offset=offset)
                if scrolled.points:
                    yield [document_input(upstream["collection_id"], p.document_id, p.payload)
                           for p in scrolled.points]  # fmt: skip
                if scrolled.next_offset is None:
                    return
                offset = scrolled.next_offset

    async def _total(self, namespace_id: str, found: dict[str, Any]) -> int:
        src = found["source"]
        if src.get("type") == "bucket":
            total, after = 0, None
            while page := await self.sources.bucket_objects(
                namespace_id=namespace_id, bucket_id=src["bucket_id"], after=after, limit=1000
            ):
                total += len(page)
                after = page[-1].object_id
            return total
        upstream = await self.collection(namespace_id, src["collection_id"])
        if upstream is None:
            return 0
        return await self.vectors.count(view=await self._view(upstream["space"], upstream["owner"]))

    async def _run_batch(self, namespace_id: str, collection_id: str, batch_id: str) -> None:
        """Re-process the whole source into the new generation, then switch to it in one event."""
        found = await self.collection(namespace_id, collection_id)
        async with self.store.transaction() as tx:
            batch = await readmodel.batch(tx, batch_id)
        if found is None or batch is None:
            return
        try:
            await self._process(namespace_id, found, batch)
        except Exception as failure:
            log.exception("batch %s failed", batch_id)
            error = f"{type(failure).__name__}: {failure}"
            events: list[Event] = [
                BatchFinished(namespace_id=namespace_id, collection_id=collection_id,
                              batch_id=batch_id, status="FAILED", result={"error": error}),
            ]  # fmt: skip
            if batch["task_id"] is not None:
                events.append(
                    TaskFinished(task_id=batch["task_id"], status=TaskStatus.FAILED, error=error)
                )
            await self._append(namespace_id, events, [uuid.uuid4() for _ in events])
            return
        await self._finish_batch(namespace_id, collection_id, batch_id)

    async def _process(
        self, namespace_id: str, found: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        collection_id, batch_id = found["collection_id"], batch["batch_id"]
        owner, task_id = batch["owner"], batch["task_id"]
        extractor = self.extractor_for(found["feature_extractor"])
        total = await self._total(namespace_id, found)
        done = 0
        async for inputs in self._pages(namespace_id, found):
            deleted = self._deleted.get(batch_id, set())
            inputs = [item for item in inputs if item.root_object_id not in deleted]
            outcome = await extract(extractor, collection_id, inputs, batch_id=batch_id)
            outcome.drop(self._deleted.get(batch_id, set()))  # deleted while the model ran
            done += len(inputs)
            key = uuid.uuid5(_BATCH_NS, f"{batch_id}\x00" + "\x00".join(i.input_id for i in inputs))
            written = DocumentsWritten(
                namespace_id=namespace_id, collection_id=collection_id, owner=owner,
                batch_id=batch_id, documents=outcome.documents, failures=outcome.failures,
                model_calls=outcome.model_calls, cache_hits=outcome.cache_hits,
                cache_misses=outcome.cache_misses,
            )  # fmt: skip
            events: list[Event] = [written]
            if task_id is not None:  # a back-fill has no catalog task; its batch shows progress
                events.append(TaskProgressed(task_id=task_id, status=TaskStatus.PROCESSING,
                                             done=min(done, max(total, done)), total=max(total, done)))  # fmt: skip
            position, *_ = await self._append(namespace_id, events,
                                              _ids(key, "written", "progress")[: len(events)])  # fmt: skip
            _count_written(outcome, batch["kind"])
            if outcome.points:
                view = await self.vectors.get_view(space=space_spec(found["space"]), owner=owner)
                await self.vectors.upsert(view=view, points=outcome.points, position=position)

    async def _finish_batch(self, namespace_id: str, collection_id: str, batch_id: str) -> None:
        found = await self.collection(namespace_id, collection_id)
        async with self.store.transaction() as tx:
            batch = await readmodel.batch(tx, batch_id)
            failed = await readmodel.failures(tx, batch_id)
        if found is None or batch is None:
            return
        lookups = batch["cache_hits"] + batch["cache_misses"]
        result = {
            "batch_id": batch_id, "collection_id": collection_id,
            "documents_written": batch["written"], "failed": len(failed),
            "model_calls": batch["model_calls"],
            "cache_hit_ratio": round(batch["cache_hits"] / lookups, 4) if lookups else 1.0,
        }  # fmt: skip
        status = TaskStatus.COMPLETED_WITH_ERRORS if failed else TaskStatus.COMPLETED
        named: list[tuple[str, Event]] = [
            ("finished", BatchFinished(namespace_id=namespace_id, collection_id=collection_id,
                                       batch_id=batch_id, status=status.value, result=result)),
        ]  # fmt: skip
        if batch["kind"] == "trigger":  # a back-fill wrote into the generation already served
            named.insert(0, ("activated", GenerationActivated(
                namespace_id=namespace_id, collection_id=collection_id, owner=batch["owner"],
                previous_owner=found["owner"], batch_id=batch_id,
                space=VectorSpace.model_validate(found["space"]),
            )))  # fmt: skip
        if batch["task_id"] is not None:
            named.append(
                ("task", TaskFinished(task_id=batch["task_id"], status=status, result=result))
            )
        await self._append(namespace_id, [event for _, event in named],
                           _ids(uuid.uuid5(_BATCH_NS, batch_id), *(name for name, _ in named)))  # fmt: skip

    # ---- documents, batches, retry ---------------------------------------------------------

    async def documents(
        self, namespace_id: str, collection_id: str, *, limit: int, offset: int
    ) -> dict[str, Any]:
        """A page of the collection's documents (active generation), ordered by id."""
        found = await self._known(namespace_id, collection_id)
        view = await self._view(found["space"], found["owner"])
        rows_view = readmodel.row_view([(s.owner, s.upto) for s in view.segments], view.owner)
        async with self.store.transaction() as tx:
            rows = await readmodel.visible_documents(
                tx,
                rows_view,
                suffix=f" ORDER BY document_id LIMIT {int(limit) + 1} OFFSET {int(offset)}",
            )
        page = rows[:limit]
        points = await self.vectors.get(view=view, document_ids=[r["document_id"] for r in page])
        payloads = {p.document_id: p.payload for p in points}
        results = [_record(r, payloads.get(r["document_id"], {}), found) for r in page]
        return {"results": results, "limit": limit, "offset": offset, "has_more": len(rows) > limit}

    async def _known(self, namespace_id: str, collection_id: str) -> dict[str, Any]:
        found = await self.collection(namespace_id, collection_id)
        if found is None:
            raise NotFoundError(f"collection {collection_id!r} not found")
        return found

    # ---- enrichment (taxonomy labels, cluster ids; see enrichment.py) -------------------------

    async def enrich_documents(
        self, namespace_id: str, collection_id: str, updates: dict[str, dict[str, Any]], *,
        source: str, cause: uuid.UUID | None = None,
    ) -> int:  # fmt: skip
        """Set payload fields on documents as new versions through ``documents_enriched``;
        returns how many changed (unchanged ones write nothing)."""
        from services.extractor.enrichment import enrich

        return await enrich(self, namespace_id, collection_id, updates, source=source, cause=cause)

    async def document(self, namespace_id: str, document_id: str) -> dict[str, Any]:
        """A document visible in any collection of the namespace (active generations)."""
        for found in await self.collections(namespace_id):
            view = await self._view(found["space"], found["owner"])
            rows_view = readmodel.row_view([(s.owner, s.upto) for s in view.segments], view.owner)
            async with self.store.transaction() as tx:
                rows = await readmodel.visible_documents(
                    tx, rows_view, where="document_id = $1", args=(document_id,)
                )
            if rows:
                points = await self.vectors.get(view=view, document_ids=[document_id])
                return _record(rows[0], points[0].payload if points else {}, found)
        raise NotFoundError(f"document {document_id!r} not found")

    async def lineage(self, namespace_id: str, document_id: str) -> dict[str, Any]:
        """The chain from this document back through its source documents to the object."""
        chain: list[dict[str, Any]] = []
        current: str | None = document_id
        while current is not None and len(chain) < 32:
            record = await self.document(namespace_id, current)
            chain.append(
                {key: record[key] for key in ("document_id", "collection_id", "lineage_path")}
            )
            current = record.get("source_document_id")
        first = await self.document(namespace_id, document_id)
        return {
            "document_id": document_id, "root_object_id": first["root_object_id"],
            "lineage_path": first["lineage_path"], "chain": chain,
        }  # fmt: skip

    async def batch(self, namespace_id: str, batch_id: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.batch(tx, batch_id)
            failed = await readmodel.failures(tx, batch_id) if found else []
        if found is None or found["namespace_id"] != namespace_id:
            raise NotFoundError(f"batch {batch_id!r} not found")
        lookups = found["cache_hits"] + found["cache_misses"]
        return {
            "batch_id": batch_id, "collection_id": found["collection_id"],
            "task_id": found["task_id"], "kind": found["kind"], "status": found["status"],
            "documents_written": found["written"], "model_calls": found["model_calls"],
            "cache_hit_ratio": round(found["cache_hits"] / lookups, 4) if lookups else None,
            "failed": len(failed), "failures": failed, "result": found["result"],
        }  # fmt: skip

    async def retry(self, namespace_id: str, batch_id: str) -> dict[str, Any]:
        """Process the batch's failed inputs again into the same generation; still-failing ones
        stay listed with their new error."""
        current = await self.batch(namespace_id, batch_id)
        if current["status"] == "PROCESSING":
            raise ConflictError(f"batch {batch_id!r} is still processing; retry after it ends")
        found = await self._known(namespace_id, current["collection_id"])
        async with self.store.transaction() as tx:
            owner = (await readmodel.batch(tx, batch_id) or {})["owner"]
        if owner not in (found["owner"], *found["pending"]):
            raise ConflictError(f"batch {batch_id!r} wrote a generation that is no longer served")
        wanted = {f["input_id"] for f in current["failures"]}
        inputs: list[Input] = []
        if wanted:
            async for page in self._pages(namespace_id, found):
                inputs += [item for item in page if item.input_id in wanted]
        if inputs:
            extractor = self.extractor_for(found["feature_extractor"])
            outcome = await extract(extractor, found["collection_id"], inputs, batch_id=batch_id)
            written = self._written(
                namespace_id, found["collection_id"], owner, outcome, active=True
            )
            written = written.model_copy(update={"batch_id": batch_id})
            (position,) = await self._append(namespace_id, [written], [uuid.uuid4()])
            _count_written(outcome, "retry")
            if outcome.points:
                view = await self._view(found["space"], owner)
                await self.vectors.upsert(view=view, points=outcome.points, position=position)
        after = await self.batch(namespace_id, batch_id)
        if after["kind"] == "trigger" and after["status"].startswith("COMPLETED"):
            status = "COMPLETED_WITH_ERRORS" if after["failed"] else "COMPLETED"
            result = {**after["result"], "failed": after["failed"],
                      "documents_written": after["documents_written"]}  # fmt: skip
            finished = BatchFinished(namespace_id=namespace_id, collection_id=found["collection_id"],
                                     batch_id=batch_id, status=status, result=result)  # fmt: skip
            await self._append(namespace_id, [finished], [uuid.uuid4()])
            after = await self.batch(namespace_id, batch_id)
        return after | {"retried": len(wanted)}

    # ---- materialisation of forks -------------------------------------------------------------

    async def materialise(
        self, namespace_id: str, collection_id: str, *, organization_id: str
    ) -> dict[str, Any]:
        """Start copying the collection's inherited documents into a generation of its own, as
        a task (``mode=copy``): afterwards it reads the same without its parent's points."""
        found = await self._known(namespace_id, collection_id)
        total = await self.vectors.count(view=await self._view(found["space"], found["owner"]))
        task_id = new_id("tsk")
        created = TaskCreated(task_id=task_id, namespace_id=namespace_id,
                              organization_id=organization_id, kind="collection.materialise",
                              resource_id=collection_id, total=total)  # fmt: skip
        await self._append(namespace_id, [created], [uuid.uuid4()])
        self._start_materialise(namespace_id, collection_id, task_id=task_id)
        return {
            "task_id": task_id,
            "status": TaskStatus.PENDING.value,
            "collection_id": collection_id,
        }

    def _start_materialise(
        self, namespace_id: str, collection_id: str, *, task_id: str | None
    ) -> None:
        """Run in the background, one at a time per collection (automatic starts coalesce)."""
        key = f"materialise:{namespace_id}:{collection_id}"
        if key in self._runs and task_id is None:
            return
        previous = self._runs.get(key)
        task = asyncio.create_task(
            self._materialise(namespace_id, collection_id, task_id, previous), name=key
        )
        self._runs[key] = task
        task.add_done_callback(lambda _: self._finished_run(key, task))

    async def _materialise(
        self,
        namespace_id: str,
        collection_id: str,
        task_id: str | None,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        found = await self._known(namespace_id, collection_id)
        view = await self._view(found["space"], found["owner"])
        total = await self.vectors.count(view=view)
        progress: list[Event] = []
        if task_id is not None:
            progress.append(TaskProgressed(task_id=task_id, status=TaskStatus.PROCESSING,
                                           done=0, total=total))  # fmt: skip
        try:
            if all(s.live for s in view.segments) and not view.masked:
                result = {"collection_id": collection_id, "points": total, "points_after": total}
            else:
                event = ViewMaterialised(namespace_id=namespace_id, collection_id=collection_id,
                                         owner=view.owner, task_id=task_id,
                                         segments=[(s.owner, s.upto) for s in view.segments])  # fmt: skip
                *_, position = await self._append(
                    namespace_id,
                    [*progress, event],
                    [uuid.uuid4() for _ in range(len(progress) + 1)],
                )
                after = await self.vectors.materialise(view=view, position=position)
                result = {"collection_id": collection_id, "points": total, "position": position,
                          "points_after": await self.vectors.count(view=after)}  # fmt: skip
        except Exception as failure:
            log.exception("materialisation of %s failed", collection_id)
            if task_id is not None:
                error = f"{type(failure).__name__}: {failure}"
                failed = TaskFinished(task_id=task_id, status=TaskStatus.FAILED, error=error)
                await self._append(namespace_id, [failed], [uuid.uuid4()])
            return
        if task_id is not None:
            done = TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED, result=result)
            await self._append(namespace_id, [done], [uuid.uuid4()])

    # ---- namespace clones --------------------------------------------------------------------

    async def _on_namespace_forked(self, event: NamespaceForked, envelope: Envelope) -> None:
        """Fork every collection's active view into the clone (O(1) each), then acknowledge."""
        clone, parent = event.namespace_id, event.parent_namespace_id
        error: str | None = None
        try:
            await self._fork_namespace(event, envelope)
        except Exception as failure:  # the clone must hear about it, not wait forever
            log.exception("fork of %s into %s failed", parent, clone)
            error = f"{type(failure).__name__}: {failure}"
        ack = NamespaceForkAcknowledged(
            namespace_id=clone, service=GROUP, task_id=event.task_id, error=error
        )
        await self._append(clone, [ack], _ids(envelope.event_id, "ack"))

    async def _fork_namespace(self, event: NamespaceForked, envelope: Envelope) -> None:
        clone, parent = event.namespace_id, event.parent_namespace_id
        head = await self.store.head_position()
        async with self.store.transaction() as tx:
            known = await tx.fetchval(
                "SELECT upto FROM ext_namespaces WHERE namespace_id = $1", clone
            )
            root = await readmodel.lineage_root(tx, parent)
            upto = (
                int(known)
                if known is not None
                else await readmodel.fork_position(tx, parent, event.at_position, head)
            )
            inherited = (
                await readmodel.collections_as_of(tx, parent, event.at_position)
                if event.include_resources.collections
                else []
            )
        events: list[Event] = [
            ExtractorNamespaceRegistered(
                namespace_id=clone, lineage_root=root, parent_namespace_id=parent,
                at_position=event.at_position, upto=upto,
            )
        ]  # fmt: skip
        names = ["namespace"]
        for found in inherited:
            owner = found["owner"]
            if found["activated_at"] > upto and found["previous_owner"]:
                owner = found["previous_owner"]  # switched after the fork: the clone keeps the old
            src = dict(found["source"])
            for field in ("bucket_id", "collection_id"):
                if src.get(field):
                    src[field] = derive(clone, src[field])
            new_id = derive(clone, found["collection_id"])
            events.append(ExtractorCollectionRegistered(
                namespace_id=clone, collection_id=new_id, collection_name=found["collection_name"],
                feature_extractor=found["feature_extractor"], feature_uri=found["feature_uri"],
                source=src, space=VectorSpace.model_validate(found["space"]), owner=new_id,
                forked_from=owner, forked_at=upto, status=found["status"],
                source_position=event.at_position,
            ))  # fmt: skip
            names.append(new_id)
        await self._append(
            clone, events, _ids(envelope.event_id, *names), causation=envelope.event_id
        )
        for registered in events[1:]:
            assert isinstance(registered, ExtractorCollectionRegistered)
            await self._open_view(clone, registered.collection_id)


_PRESENTED = (
    "root_object_id", "object_id", "source_collection_id", "source_document_id", "lineage_path",
    "text", "chunk_index", "truncated", "batch_id",
)  # fmt: skip


def _record(row: dict[str, Any], payload: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """A document as the API shows it: read-model lineage plus the payload (text, fields)."""
    fields = {
        k: v for k, v in payload.items()
        if k not in _PRESENTED and k not in ("collection_id", "owner", "born", "died", "document_id")
    }  # fmt: skip
    record = {key: payload.get(key, row.get(key)) for key in _PRESENTED}
    record.update(
        document_id=row["document_id"], collection_id=found["collection_id"],
        lineage_path=row["lineage_path"], root_object_id=row["root_object_id"],
        source_document_id=row.get("source_document_id"), feature_uri=found["feature_uri"],
        fields=fields,
    )  # fmt: skip
    return record
