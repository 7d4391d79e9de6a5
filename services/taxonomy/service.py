"""The taxonomy service: taxonomies and clusters as events in its own store; apply, compare and
cluster executions as tasks.

Like the retrieval service, it imports neither the catalog nor the extractor: the runtime hands
it the ``RetrievalService`` (to run backing retrievers in-process), a ``DocumentOwner`` (the
extractor: collections, active views, and ``enrich_documents`` — documents belong to the
extractor, so labels are written as the extractor's events), the vector store (to read the
documents to label) and ``start_task`` (the catalog's task registry, so a returned task id can
be polled at once). Progress and results are ``task.*`` events in this service's store, relayed
to the catalog through the outbox.

Namespace clones: the service is a fork participant. With ``include_resources.taxonomies`` it
copies the parent's taxonomies (config only, ids and retrievers ``derive(clone, old)``); it
always acknowledges. Labels already written travel with the forked vector views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from contracts import topics
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.namespaces import NamespaceForkAcknowledged, NamespaceForked
from contracts.tasks import TaskCreated, TaskFinished, TaskProgressed, TaskStatus
from contracts.taxonomy import (
    ApplyTaxonomy,
    CloneTaxonomy,
    ClusterCreated,
    ClusterDeleted,
    ClusterExecutionCompleted,
    ClusterExecutionFailed,
    CompareTaxonomies,
    CreateCluster,
    CreateTaxonomy,
    TaxonomyApplied,
    TaxonomyCreated,
    TaxonomyDeleted,
    TaxonomyNamespaceForked,
    TaxonomyNode,
    TaxonomyUpdated,
    UpdateTaxonomy,
)
from libs.bus import Bus, consume_envelopes
from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.event_codec import to_new_event
from libs.eventstore import EventStore, ProjectionRunner, event_ids_for
from libs.ids import derive
from libs.outbox import OutboxRelay
from libs.vectors import DenseVector, VectorStore, View
from libs.vectors.filters import parse_filter
from services.taxonomy import clusters as clustering
from services.taxonomy import compare as comparing
from services.taxonomy import readmodel
from services.taxonomy.hierarchy import check_hierarchy
from services.taxonomy.labeling import DocumentError, Executor, Labeler, fields_of, lookup

log = logging.getLogger("offshoot.taxonomy")

GROUP = "taxonomy"
PAGE_SIZE = 256


class Retrieval(Executor, Protocol):
    """What the service reads of the retrieval service (``RetrievalService`` satisfies it)."""

    async def retriever(self, namespace_id: str, identifier: str) -> dict[str, Any]: ...


class DocumentOwner(Protocol):
    """What the service needs of the extractor (``ExtractorService`` satisfies it)."""

    async def collections(self, namespace_id: str) -> list[dict[str, Any]]: ...

    async def active_view(self, namespace_id: str, collection_id: str) -> View: ...

    async def enrich_documents(
        self, namespace_id: str, collection_id: str, updates: dict[str, dict[str, Any]], *,
        source: str, cause: uuid.UUID | None = None,
    ) -> int: ...  # fmt: skip


StartTask = Callable[[TaskCreated], Awaitable[None]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _stream(namespace_id: str) -> str:
    return f"taxonomy-{namespace_id}"


class TaxonomyService:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        retrieval: Retrieval,
        documents: DocumentOwner,
        vectors: VectorStore,
        start_task: StartTask,
        page_size: int = PAGE_SIZE,
        concurrency: int = 8,
    ) -> None:
        self.store = store
        self.bus = bus
        self.retrieval = retrieval
        self.documents = documents
        self.vectors = vectors
        self.start_task = start_task
        self.page_size = page_size
        self.concurrency = concurrency
        self._runner = ProjectionRunner(store, readmodel.TaxonomyProjection())
        self._projection_lock = asyncio.Lock()
        self.lock = asyncio.Lock()
        self._jobs: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._relay: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._catch_up()
        self._relay = asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop))
        await consume_envelopes(self.bus, topics.EVENTS, group=GROUP, handler=self.handle)

    async def stop(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        self._stop.set()
        if self._relay is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay

    async def idle(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 (a test/ops helper)
        async with asyncio.timeout(timeout):
            while self._jobs:
                await asyncio.gather(*self._jobs, return_exceptions=True)

    async def _catch_up(self) -> None:
        async with self._projection_lock:
            await self._runner.catch_up()

    async def _append(
        self, namespace_id: str, events: Sequence[Event], ids: Sequence[uuid.UUID] | None = None
    ) -> list[int]:
        ids = ids or [uuid.uuid4() for _ in events]
        new = [
            to_new_event(event, namespace_id=namespace_id, event_id=event_id)
            for event, event_id in zip(events, ids, strict=True)
        ]
        positions = await self.store.append(_stream(namespace_id), new, expected_version=None)
        await self._catch_up()
        return positions

    def _spawn(self, job: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _new_task(
        self, namespace_id: str, organization_id: str, kind: str, resource_id: str, total: int
    ) -> str:
        task_id = "tsk_" + uuid.uuid4().hex[:20]
        await self.start_task(
            TaskCreated(task_id=task_id, namespace_id=namespace_id, organization_id=organization_id,
                        kind=kind, resource_id=resource_id, total=total)
        )  # fmt: skip
        return task_id

    # ---- collections -------------------------------------------------------------------------

    async def _collection(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        for found in await self.documents.collections(namespace_id):
            if identifier in (found["collection_id"], found.get("collection_name")):
                return found
        raise NotFoundError(f"collection {identifier!r} not found")

    async def _document_ids(self, view: View, filters: dict[str, Any] | None) -> list[str]:
        """Every visible document id first: the walk then writes new versions without
        meeting them again in the scroll."""
        try:
            condition = parse_filter(filters) if filters else None
        except ValidationError as error:
            raise InvalidInputError(f"filters: {error.errors()[0]['msg']}") from None
        ids: list[str] = []
        offset: str | None = None
        while True:
            page = await self.vectors.scroll(view=view, filter=condition, limit=1000, offset=offset)
            ids += [p.document_id for p in page.points]
            offset = page.next_offset
            if offset is None:
                return ids

    # ---- taxonomies --------------------------------------------------------------------------

    async def list_taxonomies(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.taxonomies(tx, namespace_id)

    async def taxonomy(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.taxonomy(tx, namespace_id, identifier)
        if found is None:
            raise NotFoundError(f"taxonomy {identifier!r} not found")
        return found

    async def versions(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        found = await self.taxonomy(namespace_id, identifier)
        async with self.store.transaction() as tx:
            history = await readmodel.versions(tx, found["taxonomy_id"])
            clones = await readmodel.clones_of(tx, namespace_id, found["taxonomy_id"])
        return {"taxonomy_id": found["taxonomy_id"], "version": found["version"],
                "cloned_from": found.get("cloned_from"), "clones": clones,
                "results": history}  # fmt: skip

    async def _name_free(self, namespace_id: str, name: str, but: str | None = None) -> None:
        async with self.store.transaction() as tx:
            found = await readmodel.taxonomy(tx, namespace_id, name)
        if found is not None and found["taxonomy_id"] != but:
            raise ConflictError(f"a taxonomy named {name!r} already exists in this namespace")

    async def _checked_nodes(
        self, namespace_id: str, nodes: Sequence[TaxonomyNode]
    ) -> list[TaxonomyNode]:
        """The nodes with retriever names resolved to ids, after every check: the hierarchy
        (one root, known parents, no cycle), each retriever exists, and each input mapping names
        an input the retriever declares (and every required input is mapped)."""
        check_hierarchy(nodes)
        checked = []
        for node in nodes:
            label = f"node {node.node_id!r}"
            try:
                found = await self.retrieval.retriever(namespace_id, node.retriever_id)
            except NotFoundError:
                raise InvalidInputError(
                    f"{label}: retriever {node.retriever_id!r} does not exist in this namespace"
                ) from None
            schema = found.get("input_schema") or {}
            declared = set((schema.get("properties") or {}).keys())
            keys = [m.input_key for m in node.input_mappings]
            for mapping in node.input_mappings:
                if declared and mapping.input_key not in declared:
                    raise InvalidInputError(
                        f"{label}: input_mappings: {mapping.input_key!r} is not an input of "
                        f"retriever {found['retriever_name']!r} (it takes {sorted(declared)})"
                    )
                if mapping.source == "parent_label" and node.parent_node_id is None:
                    raise InvalidInputError(
                        f"{label}: input_mappings: {mapping.input_key!r} maps the parent label "
                        "but the node has no parent"
                    )
            missing = [k for k in schema.get("required", []) if k not in keys]
            if missing:
                raise InvalidInputError(
                    f"{label}: input_mappings: the retriever requires {missing}, not mapped"
                )
            checked.append(node.model_copy(update={"retriever_id": found["retriever_id"]}))
        return checked

    @staticmethod
    def _nodes_of(command: CreateTaxonomy) -> list[TaxonomyNode]:
        if command.taxonomy_type == "hierarchical":
            if not command.nodes:
                raise InvalidInputError("nodes: a hierarchical taxonomy needs at least one node")
            return list(command.nodes)
        if command.nodes:
            raise InvalidInputError("nodes: a flat taxonomy has retriever_id and input_mappings")
        if command.retriever_id is None or not command.input_mappings:
            raise InvalidInputError("a flat taxonomy needs retriever_id and input_mappings")
        return [
            TaxonomyNode(
                node_id="root", retriever_id=command.retriever_id,
                input_mappings=command.input_mappings,
                enrichment_fields=command.enrichment_fields, label_field=command.label_field,
            )
        ]  # fmt: skip

    async def create_taxonomy(
        self, namespace_id: str, command: CreateTaxonomy, *, key_id: str | None,
        cloned_from: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        nodes = await self._checked_nodes(namespace_id, self._nodes_of(command))
        taxonomy_id = "tax_" + uuid.uuid5(command.command_id, "taxonomy").hex[:20]
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.taxonomy(tx, namespace_id, taxonomy_id)
            if existing is not None:
                return existing  # the same command again
            await self._name_free(namespace_id, command.taxonomy_name)
            created = TaxonomyCreated(
                namespace_id=namespace_id, taxonomy_id=taxonomy_id,
                taxonomy_name=command.taxonomy_name, description=command.description,
                taxonomy_type=command.taxonomy_type, nodes=nodes, output=command.output,
                output_field=command.output_field, min_score=command.min_score,
                top_k=command.top_k, cloned_from=cloned_from, created_by=key_id,
                created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return await self.taxonomy(namespace_id, taxonomy_id)

    async def update_taxonomy(
        self, namespace_id: str, identifier: str, command: UpdateTaxonomy
    ) -> dict[str, Any]:
        immutable = [f for f in ("retriever_id", "input_mappings", "nodes")
                     if getattr(command, f) is not None]  # fmt: skip
        if immutable:
            raise ConflictError(
                f"{', '.join(immutable)}: a taxonomy's core config is immutable; clone it "
                "(POST /v1/taxonomies/{taxonomy_id}/clone) with the new value instead"
            )
        async with self.lock:
            found = await self.taxonomy(namespace_id, identifier)
            if command.taxonomy_name is not None:
                await self._name_free(namespace_id, command.taxonomy_name, but=found["taxonomy_id"])
            updated = TaxonomyUpdated(
                namespace_id=namespace_id, taxonomy_id=found["taxonomy_id"],
                taxonomy_name=command.taxonomy_name, description=command.description,
                updated_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [updated], event_ids_for(command.command_id, 1))
        return await self.taxonomy(namespace_id, found["taxonomy_id"])

    async def delete_taxonomy(self, namespace_id: str, identifier: str) -> None:
        async with self.lock:
            found = await self.taxonomy(namespace_id, identifier)
            deleted = TaxonomyDeleted(namespace_id=namespace_id, taxonomy_id=found["taxonomy_id"])
            await self._append(namespace_id, [deleted])

    async def clone_taxonomy(
        self, namespace_id: str, identifier: str, command: CloneTaxonomy, *, key_id: str | None
    ) -> dict[str, Any]:
        found = await self.taxonomy(namespace_id, identifier)
        nodes = [TaxonomyNode.model_validate(n) for n in found["nodes"]]
        if command.nodes is not None:
            nodes = list(command.nodes)
        elif len(nodes) == 1:
            changes: dict[str, Any] = {}
            if command.retriever_id is not None:
                changes["retriever_id"] = command.retriever_id
            if command.input_mappings is not None:
                changes["input_mappings"] = command.input_mappings
            if command.enrichment_fields is not None:
                changes["enrichment_fields"] = command.enrichment_fields
            nodes = [nodes[0].model_copy(update=changes)]
        elif command.retriever_id is not None or command.input_mappings is not None:
            raise InvalidInputError(
                "a hierarchical taxonomy is cloned with new 'nodes', not a single retriever_id"
            )
        flat = found["taxonomy_type"] == "flat" and command.nodes is None
        shape: dict[str, Any] = (
            {"taxonomy_type": "flat", "retriever_id": nodes[0].retriever_id,
             "input_mappings": nodes[0].input_mappings,
             "enrichment_fields": nodes[0].enrichment_fields, "label_field": nodes[0].label_field}
            if flat
            else {"taxonomy_type": "hierarchical", "nodes": nodes}
        )  # fmt: skip
        create = CreateTaxonomy(
            command_id=command.command_id, taxonomy_name=command.taxonomy_name,
            description=found["description"] if command.description is None else command.description,
            output=command.output or found["output"], output_field=found["output_field"],
            min_score=found["min_score"] if command.min_score is None else command.min_score,
            top_k=found["top_k"], **shape,
        )  # fmt: skip
        return await self.create_taxonomy(
            namespace_id, create, key_id=key_id, cloned_from=found["taxonomy_id"]
        )

    # ---- apply -------------------------------------------------------------------------------

    async def _check_mappings(
        self, namespace_id: str, taxonomy: dict[str, Any], collection: dict[str, Any]
    ) -> View:
        """422 before anything runs: a vector mapping of a feature URI the collection lacks, or
        a field mapping no document of the collection has (looked up in the first page)."""
        view = await self.documents.active_view(namespace_id, collection["collection_id"])
        page = await self.vectors.scroll(view=view, limit=50)
        for node in taxonomy["nodes"]:
            for mapping in node["input_mappings"]:
                if (
                    mapping["source"] == "vector"
                    and mapping["feature_uri"] != collection["feature_uri"]
                ):
                    raise InvalidInputError(
                        f"node {node['node_id']!r}: input_mappings: {mapping['feature_uri']} is "
                        f"not a feature of collection {collection['collection_id']!r} "
                        f"({collection['feature_uri']})"
                    )
                if (
                    mapping["source"] == "field"
                    and page.points
                    and not any(lookup(p.payload, mapping["path"]) is not None for p in page.points)
                ):
                    raise InvalidInputError(
                        f"node {node['node_id']!r}: input_mappings: field {mapping['path']!r} "
                        f"is missing from the documents of {collection['collection_id']!r}"
                    )
        return view

    async def apply(
        self, namespace_id: str, identifier: str, command: ApplyTaxonomy, *, organization_id: str
    ) -> dict[str, Any]:
        taxonomy = await self.taxonomy(namespace_id, identifier)
        collection = await self._collection(namespace_id, command.collection_id)
        view = await self._check_mappings(namespace_id, taxonomy, collection)
        ids = await self._document_ids(view, command.filters)
        task_id = await self._new_task(
            namespace_id, organization_id, "taxonomy.apply", taxonomy["taxonomy_id"], len(ids)
        )
        self._spawn(self._apply(namespace_id, taxonomy, collection, ids, command.merge, task_id))
        return {"task_id": task_id, "taxonomy_id": taxonomy["taxonomy_id"],
                "collection_id": collection["collection_id"], "total": len(ids)}  # fmt: skip

    async def _apply(
        self, namespace_id: str, taxonomy: dict[str, Any], collection: dict[str, Any],
        ids: list[str], merge: str, task_id: str,
    ) -> None:  # fmt: skip
        try:
            result = await self.label_collection(
                namespace_id, taxonomy, collection, ids, merge=merge, task_id=task_id
            )
        except Exception as failure:
            log.exception("apply of %s failed", taxonomy["taxonomy_id"])
            finished = TaskFinished(task_id=task_id, status=TaskStatus.FAILED,
                                    error=f"{type(failure).__name__}: {failure}")  # fmt: skip
            await self._append(namespace_id, [finished])
            return
        applied = TaxonomyApplied(
            namespace_id=namespace_id, taxonomy_id=taxonomy["taxonomy_id"],
            collection_id=collection["collection_id"], task_id=task_id,
            merge="append" if merge == "append" else "replace",
            documents_seen=result["documents_seen"], documents_changed=result["documents_changed"],
            failed=result["failed"], failures=result["failures"][:100],
        )  # fmt: skip
        status = TaskStatus.COMPLETED_WITH_ERRORS if result["failed"] else TaskStatus.COMPLETED
        await self._append(namespace_id, [applied, TaskFinished(task_id=task_id, status=status,
                                                                result=result)])  # fmt: skip

    async def label_collection(
        self, namespace_id: str, taxonomy: dict[str, Any], collection: dict[str, Any],
        ids: list[str], *, merge: str = "replace", task_id: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Label ``ids`` page by page and write what changed; the figures the bench prints
        (time in the retriever vs in writing) come from here."""
        labeler = Labeler(self.retrieval, namespace_id, taxonomy, concurrency=self.concurrency)
        collection_id = collection["collection_id"]
        with_vectors = bool(labeler.needs_vectors)
        seen = changed = 0
        failures: list[dict[str, str]] = []
        timings = {"reading_s": 0.0, "retriever_s": 0.0, "writing_s": 0.0}
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"{task_id or uuid.uuid4()}")
        started = time.perf_counter()
        for start in range(0, len(ids), self.page_size):
            chunk = ids[start : start + self.page_size]
            t0 = time.perf_counter()
            view = await self.documents.active_view(namespace_id, collection_id)
            points = await self.vectors.get(
                view=view, document_ids=chunk, with_vectors=with_vectors
            )
            t1 = time.perf_counter()
            outcomes = await labeler.label_many(
                [(p.payload, _dense(p.vector)) for p in points]
            )  # fmt: skip
            t2 = time.perf_counter()
            updates: dict[str, dict[str, Any]] = {}
            for point, outcome in zip(points, outcomes, strict=True):
                if isinstance(outcome, DocumentError):
                    failures.append({"document_id": point.document_id, "error": str(outcome)})
                    continue
                fields = fields_of(taxonomy, outcome, current=point.payload, merge=merge)
                if any(point.payload.get(k) != v for k, v in fields.items()):
                    updates[point.document_id] = fields
            if updates:
                changed += await self.documents.enrich_documents(
                    namespace_id, collection_id, updates, source=taxonomy["taxonomy_id"],
                    cause=uuid.uuid5(key, str(start)),
                )  # fmt: skip
            t3 = time.perf_counter()
            seen += len(points)
            timings["reading_s"] += t1 - t0
            timings["retriever_s"] += t2 - t1
            timings["writing_s"] += t3 - t2
            if task_id is not None:
                progress = TaskProgressed(task_id=task_id, status=TaskStatus.PROCESSING,
                                          done=seen, total=len(ids))  # fmt: skip
                await self._append(namespace_id, [progress])
        timings["total_s"] = time.perf_counter() - started
        return {
            "taxonomy_id": taxonomy["taxonomy_id"], "collection_id": collection_id,
            "documents_seen": seen, "documents_changed": changed, "failed": len(failures),
            "failures": failures[:100], "timings": {k: round(v, 4) for k, v in timings.items()},
        }  # fmt: skip

    # ---- compare -----------------------------------------------------------------------------

    async def compare(self, namespace_id: str, command: CompareTaxonomies) -> dict[str, Any]:
        baseline = await self.taxonomy(namespace_id, command.baseline)
        candidate = await self.taxonomy(namespace_id, command.candidate)
        collection = await self._collection(namespace_id, command.collection_id)
        for taxonomy in (baseline, candidate):
            await self._check_mappings(namespace_id, taxonomy, collection)
        view = await self.documents.active_view(namespace_id, collection["collection_id"])
        ids = sorted(await self._document_ids(view, None))[: command.sample]
        points = await self.vectors.get(view=view, document_ids=ids, with_vectors=True)
        ids = [p.document_id for p in points]
        tops: list[list[str | None]] = []
        for taxonomy in (baseline, candidate):
            labeler = Labeler(self.retrieval, namespace_id, taxonomy, concurrency=self.concurrency)
            outcomes = await labeler.label_many([(p.payload, _dense(p.vector)) for p in points])
            tops.append([
                None if isinstance(o, DocumentError) else o.top(taxonomy["output"])[0]
                for o in outcomes
            ])  # fmt: skip
        truth: dict[str, str] | None = None
        if isinstance(command.ground_truth, str):
            truth = {p.document_id: str(lookup(p.payload, command.ground_truth))
                     for p in points if lookup(p.payload, command.ground_truth) is not None}  # fmt: skip
        elif command.ground_truth is not None:
            truth = dict(command.ground_truth)
        result = comparing.report(ids, tops[0], tops[1], truth)
        return result | {
            "baseline": baseline["taxonomy_id"], "candidate": candidate["taxonomy_id"],
            "collection_id": collection["collection_id"], "sample": len(ids),
        }  # fmt: skip

    # ---- query-time enrichment (the taxonomy_enrich stage) -----------------------------------

    async def enrich_payloads(
        self, taxonomy_id: str, payloads: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The fields ``apply`` would write, for payloads at hand (nothing is stored)."""
        async with self.store.transaction() as tx:
            taxonomy = await readmodel.taxonomy_anywhere(tx, taxonomy_id)
        if taxonomy is None:
            raise NotFoundError(f"taxonomy {taxonomy_id!r} not found")
        labeler = Labeler(self.retrieval, taxonomy["namespace_id"], taxonomy)
        outcomes = await labeler.label_many([(p, None) for p in payloads])
        return [
            {} if isinstance(o, DocumentError) else fields_of(taxonomy, o, current=p)
            for p, o in zip(payloads, outcomes, strict=True)
        ]

    # ---- clusters ----------------------------------------------------------------------------

    async def list_clusters(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.clusters(tx, namespace_id)

    async def cluster(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.cluster(tx, namespace_id, identifier)
        if found is None:
            raise NotFoundError(f"cluster {identifier!r} not found")
        return found

    async def create_cluster(
        self, namespace_id: str, command: CreateCluster, *, key_id: str | None
    ) -> dict[str, Any]:
        try:
            collection = await self._collection(namespace_id, command.collection_id)
        except NotFoundError as missing:
            raise InvalidInputError(f"collection_id: {missing}") from None
        if command.feature_uri != collection["feature_uri"]:
            raise InvalidInputError(
                f"feature_uri: collection {collection['collection_id']!r} holds "
                f"{collection['feature_uri']}, not {command.feature_uri}"
            )
        if collection["space"]["kind"] != "dense":
            raise InvalidInputError(
                f"feature_uri: {command.feature_uri} is sparse: cluster a dense one"
            )
        params = clustering.parse_params(command.algorithm, dict(command.params))
        cluster_id = "clu_" + uuid.uuid5(command.command_id, "cluster").hex[:20]
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.cluster(tx, namespace_id, cluster_id)
            if existing is not None:
                return existing
            created = ClusterCreated(
                namespace_id=namespace_id, cluster_id=cluster_id, cluster_name=command.cluster_name,
                collection_id=collection["collection_id"], feature_uri=command.feature_uri,
                algorithm=command.algorithm, params=params, write_back=command.write_back,
                output_field=command.output_field, label_field=command.label_field,
                created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return await self.cluster(namespace_id, cluster_id)

    async def delete_cluster(self, namespace_id: str, identifier: str) -> None:
        found = await self.cluster(namespace_id, identifier)
        await self._append(
            namespace_id,
            [ClusterDeleted(namespace_id=namespace_id, cluster_id=found["cluster_id"])],
        )

    async def execute_cluster(
        self, namespace_id: str, identifier: str, *, organization_id: str
    ) -> dict[str, Any]:
        found = await self.cluster(namespace_id, identifier)
        await self._collection(namespace_id, found["collection_id"])
        task_id = await self._new_task(
            namespace_id, organization_id, "cluster.execute", found["cluster_id"], 0
        )
        self._spawn(self._execute_cluster(namespace_id, found, task_id))
        return {"task_id": task_id, "cluster_id": found["cluster_id"]}

    async def _execute_cluster(
        self, namespace_id: str, found: dict[str, Any], task_id: str
    ) -> None:
        try:
            event = await self._run_cluster(namespace_id, found, task_id)
        except Exception as failure:
            log.exception("cluster %s failed", found["cluster_id"])
            error = f"{type(failure).__name__}: {failure}"
            await self._append(namespace_id, [
                ClusterExecutionFailed(namespace_id=namespace_id, cluster_id=found["cluster_id"],
                                       task_id=task_id, error=error),
                TaskFinished(task_id=task_id, status=TaskStatus.FAILED, error=error),
            ])  # fmt: skip
            return
        result = event.model_dump(mode="json", exclude={"assignments", "namespace_id"})
        await self._append(namespace_id, [
            event, TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED, result=result),
        ])  # fmt: skip

    async def _run_cluster(
        self, namespace_id: str, found: dict[str, Any], task_id: str
    ) -> ClusterExecutionCompleted:
        collection_id = found["collection_id"]
        view = await self.documents.active_view(namespace_id, collection_id)
        ids = sorted(await self._document_ids(view, None))
        points = []
        for start in range(0, len(ids), 1000):
            points += await self.vectors.get(
                view=view, document_ids=ids[start : start + 1000], with_vectors=True
            )
        rows = [(p, _dense(p.vector)) for p in points]
        rows = [(p, v) for p, v in rows if v is not None]
        if not rows:
            raise InvalidInputError(f"collection {collection_id!r} has no vectors to cluster")
        matrix = np.asarray([v for _, v in rows], dtype=np.float64)
        result = await asyncio.to_thread(
            clustering.cluster, matrix, found["algorithm"], found["params"]
        )
        titles = [_title(lookup(p.payload, found["label_field"])) for p, _ in rows]
        summaries = clustering.summaries(matrix, result, titles)
        assignments = {p.document_id: int(k) for (p, _), k in zip(rows, result.labels, strict=True)}
        written = 0
        if found["write_back"]:
            field = found["output_field"]
            items = list(assignments.items())
            key = uuid.uuid5(uuid.NAMESPACE_URL, task_id)
            for start in range(0, len(items), self.page_size):
                updates = {d: {field: k} for d, k in items[start : start + self.page_size]}
                written += await self.documents.enrich_documents(
                    namespace_id, collection_id, updates, source=found["cluster_id"],
                    cause=uuid.uuid5(key, str(start)),
                )  # fmt: skip
        return ClusterExecutionCompleted(
            namespace_id=namespace_id, cluster_id=found["cluster_id"], task_id=task_id,
            documents=len(rows), clusters=summaries, assignments=assignments,
            metrics=result.metrics, written_back=written,
        )  # fmt: skip

    # ---- namespace clones --------------------------------------------------------------------

    async def handle(self, envelope: Envelope) -> None:
        if envelope.type == NamespaceForked.type_name:
            await self._on_namespace_forked(NamespaceForked.model_validate(envelope.data), envelope)

    async def _on_namespace_forked(self, event: NamespaceForked, envelope: Envelope) -> None:
        error: str | None = None
        mapping: dict[str, str] = {}
        try:
            if event.include_resources.taxonomies:
                mapping = await self._fork_namespace(event, envelope)
        except Exception as failure:  # the clone must hear about it, not wait forever
            log.exception("fork of %s failed", event.parent_namespace_id)
            error = f"{type(failure).__name__}: {failure}"
        ack = NamespaceForkAcknowledged(
            namespace_id=event.namespace_id, service=GROUP, task_id=event.task_id,
            mapping=mapping, error=error,
        )  # fmt: skip
        await self._append(
            event.namespace_id, [ack], [uuid.uuid5(envelope.event_id, "taxonomy-ack")]
        )

    async def _fork_namespace(self, event: NamespaceForked, envelope: Envelope) -> dict[str, str]:
        clone, parent = event.namespace_id, event.parent_namespace_id
        async with self.lock:
            async with self.store.transaction() as tx:
                found = await readmodel.taxonomies(tx, parent)
            mapping = {t["taxonomy_id"]: derive(clone, t["taxonomy_id"]) for t in found}
            events: list[Event] = [
                TaxonomyNamespaceForked(namespace_id=clone, parent_namespace_id=parent,
                                        mapping=mapping)
            ]  # fmt: skip
            for t in found:
                nodes = [
                    TaxonomyNode.model_validate(
                        n | {"retriever_id": derive(clone, n["retriever_id"])}
                    )
                    for n in t["nodes"]
                ]
                events.append(TaxonomyCreated.model_validate(
                    {k: v for k, v in t.items() if k not in ("updated_at", "version")}
                    | {"namespace_id": clone, "taxonomy_id": mapping[t["taxonomy_id"]],
                       "nodes": [n.model_dump() for n in nodes],
                       "cloned_from": t["cloned_from"] and mapping.get(t["cloned_from"])}
                ))  # fmt: skip
            ids = [uuid.uuid5(envelope.event_id, f"taxonomy-fork-{i}") for i in range(len(events))]
            await self._append(clone, events, ids)
        return mapping


def _dense(vector: object) -> list[float] | None:
    return list(vector.values) if isinstance(vector, DenseVector) else None


def _title(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = ["DocumentOwner", "Retrieval", "StartTask", "TaxonomyService"]
