"""The evaluation service: datasets, evaluations, interactions and benchmarks as events in its own
store, measured by executing retrievers through the retrieval service in-process.

Commands are appended with idempotent event ids (derived from the command id) to the
namespace's stream ``evaluation-<namespace_id>`` and projected before the call returns. Runs
(evaluations, benchmark replays) are asyncio tasks of this process: each is a catalog task
(created through ``start_task``, which the runtime points at the catalog, so ``GET /v1/tasks``
sees it the moment the call returns) whose progress and end are events of this store, published
through its outbox like every other service's task events.

The service imports neither the retrieval service nor the extractor: the runtime hands it a
``Retrieval`` (retrievers, aliases, execute) and a ``CollectionDirectory`` (collections and
their documents, for the documents a dataset names that do not exist and for collection diffs).

Namespace clones: on ``namespace.forked`` the service copies the parent's datasets into the
clone (ids ``derive(clone, old)``) and answers ``namespace.fork_acknowledged``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import JsonValue

from contracts import topics
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.evaluation import (
    INTERACTION_GRADES,
    MAX_K,
    BenchmarkCompleted,
    BenchmarkCreated,
    BenchmarkFailed,
    BenchmarkStarted,
    CreateBenchmark,
    CreateDataset,
    DatasetCreated,
    DatasetDeleted,
    DatasetQuery,
    EvaluationCompleted,
    EvaluationFailed,
    EvaluationNamespaceForked,
    EvaluationStarted,
    Interaction,
    InteractionsRecorded,
    RecordInteractions,
    RunEvaluation,
)
from contracts.namespaces import NamespaceForkAcknowledged, NamespaceForked
from contracts.tasks import TaskCreated, TaskFinished, TaskProgressed, TaskStatus
from libs.bus import Bus, consume_envelopes
from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.event_codec import to_new_event
from libs.eventstore import EventStore, ProjectionRunner, event_ids_for
from libs.ids import derive
from services.evaluation import readmodel
from services.evaluation.diff import classify
from services.evaluation.metrics import evaluate_runs, percentile, query_metrics
from services.evaluation.stats import paired_test

log = logging.getLogger("offshoot.evaluation")

GROUP = "evaluation"
PROGRESS_EVERY = 25
NEUTRAL = 1e-9  # |ΔNDCG| below this: the session is neutral


class Retrieval(Protocol):
    """What the service uses of the retrieval service (``RetrievalService`` satisfies it)."""

    async def retriever(self, namespace_id: str, identifier: str) -> dict[str, Any]: ...

    async def alias(self, namespace_id: str, alias_name: str) -> dict[str, Any]: ...

    async def execute(
        self, namespace_id: str, identifier: str, inputs: dict[str, JsonValue], *,
        limit: int | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip


class CollectionDirectory(Protocol):
    """What the service reads of the extractor (``ExtractorService`` satisfies it)."""

    async def collections(self, namespace_id: str) -> list[dict[str, Any]]: ...

    async def documents(
        self, namespace_id: str, collection_id: str, *, limit: int, offset: int
    ) -> dict[str, Any]: ...


StartTask = Callable[[TaskCreated], Awaitable[None]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _stream(namespace_id: str) -> str:
    return f"evaluation-{namespace_id}"


def _id(prefix: str, cause: uuid.UUID, name: str) -> str:
    return f"{prefix}_" + uuid.uuid5(cause, name).hex[:20]


def check_k_values(k_values: Sequence[int]) -> list[int]:
    """Distinct, sorted cutoffs; none given, or one outside 1..MAX_K, is a 422."""
    if not k_values:
        raise InvalidInputError("k_values: give at least one cutoff")
    bad = [k for k in k_values if k <= 0 or k > MAX_K]
    if bad:
        raise InvalidInputError(f"k_values: every k must be between 1 and {MAX_K}, not {bad}")
    return sorted(set(k_values))


def inputs_of(query: str | dict[str, JsonValue], key: str) -> dict[str, JsonValue]:
    return dict(query) if isinstance(query, dict) else {key: query}


def ranked_ids(results: Sequence[dict[str, Any]], field: str | None) -> list[str]:
    """The ids a ranking names (``field`` of each payload, or Offshoot's document id), first
    occurrence kept: chunks of one source document count once, at their best rank."""
    ids: list[str] = []
    for result in results:
        value = result.get("document_id") if field is None else result["payload"].get(field)
        if value is not None:
            ids.append(str(value))
    return list(dict.fromkeys(ids))


class EvaluationService:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        retrieval: Retrieval,
        directory: CollectionDirectory,
        start_task: StartTask,
    ) -> None:
        self.store = store
        self.bus = bus
        self.retrieval = retrieval
        self.directory = directory
        self._start_task = start_task
        self._runner = ProjectionRunner(store, readmodel.EvaluationProjection())
        self._projection_lock = asyncio.Lock()
        self.lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._relay: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        from libs.outbox import OutboxRelay

        await self._catch_up()
        self._relay = asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop))
        await consume_envelopes(self.bus, topics.EVENTS, group=GROUP, handler=self.handle)

    async def stop(self) -> None:
        for run in list(self._runs):
            run.cancel()
        for run in list(self._runs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
        self._stop.set()
        if self._relay is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay

    async def idle(self) -> None:
        """Wait for every running evaluation and benchmark (a test helper)."""
        while self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def _catch_up(self) -> None:
        async with self._projection_lock:
            await self._runner.catch_up()

    async def _append(
        self, namespace_id: str, events: Sequence[Event], ids: Sequence[uuid.UUID]
    ) -> None:
        new = [
            to_new_event(event, namespace_id=namespace_id, event_id=event_id)
            for event, event_id in zip(events, ids, strict=True)
        ]
        await self.store.append(_stream(namespace_id), new, expected_version=None)
        await self._catch_up()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        run = asyncio.create_task(work)
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    # ---- datasets ----------------------------------------------------------------------------

    async def create_dataset(
        self, namespace_id: str, command: CreateDataset, *, key_id: str | None
    ) -> dict[str, Any]:
        if not command.queries:
            raise InvalidInputError("queries: a dataset needs at least one query")
        counts = Counter(q.query_id for q in command.queries)
        duplicates = [query_id for query_id, count in counts.items() if count > 1]
        if duplicates:
            raise InvalidInputError(f"queries: query_id repeated: {sorted(duplicates)[:5]}")
        dataset_id = _id("eds", command.command_id, "dataset")
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.dataset(tx, namespace_id, dataset_id)
                named = await readmodel.dataset(tx, namespace_id, command.dataset_name)
            if existing is not None:
                return _summary(existing)
            if named is not None:
                raise ConflictError(f"a dataset named {command.dataset_name!r} already exists")
            created = DatasetCreated(
                namespace_id=namespace_id, dataset_id=dataset_id,
                dataset_name=command.dataset_name, description=command.description,
                document_id_field=command.document_id_field, queries=command.queries,
                created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return _summary(await self.dataset(namespace_id, dataset_id))

    async def list_datasets(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return [_summary(d) for d in await readmodel.datasets(tx, namespace_id)]

    async def dataset(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.dataset(tx, namespace_id, identifier)
        if found is None:
            raise NotFoundError(f"dataset {identifier!r} not found in this namespace")
        return found

    async def delete_dataset(self, namespace_id: str, identifier: str) -> None:
        async with self.lock:
            found = await self.dataset(namespace_id, identifier)
            deleted = DatasetDeleted(namespace_id=namespace_id, dataset_id=found["dataset_id"])
            await self._append(namespace_id, [deleted], [uuid.uuid4()])

    # ---- retrievers --------------------------------------------------------------------------

    async def resolve_retriever(self, namespace_id: str, identifier: str) -> tuple[dict[str, Any], str | None]:  # fmt: skip
        """A retriever id or name, else an alias (its current retriever): (retriever, alias)."""
        try:
            return await self.retrieval.retriever(namespace_id, identifier), None
        except NotFoundError:
            pass
        try:
            alias = await self.retrieval.alias(namespace_id, identifier)
        except NotFoundError:
            raise NotFoundError(f"no retriever or alias {identifier!r} in this namespace") from None
        found = await self.retrieval.retriever(namespace_id, alias["retriever_id"])
        return found, alias["alias_name"]

    async def _timed_execute(
        self, namespace_id: str, retriever_id: str, inputs: dict[str, JsonValue], limit: int
    ) -> tuple[list[dict[str, Any]], float]:
        began = time.perf_counter()
        result = await self.retrieval.execute(namespace_id, retriever_id, inputs, limit=limit)
        return result["results"], (time.perf_counter() - began) * 1000

    async def _task_event(self, namespace_id: str, event: Event) -> None:
        await self._append(namespace_id, [event], [uuid.uuid4()])

    # ---- evaluations -------------------------------------------------------------------------

    async def run_evaluation(
        self, namespace_id: str, command: RunEvaluation, *, organization_id: str,
        key_id: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        k_values = check_k_values(command.k_values)
        dataset = await self.dataset(namespace_id, command.dataset_id)
        if not dataset["queries"]:
            raise InvalidInputError(f"dataset {dataset['dataset_id']!r} has no queries")
        found, alias = await self.resolve_retriever(namespace_id, command.retriever_id)
        evaluation_id = _id("evl", command.command_id, "evaluation")
        task_id = _id("tsk", command.command_id, "task")
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.evaluation(tx, namespace_id, evaluation_id)
            if existing is not None:
                return _started(existing)
            await self._start_task(TaskCreated(
                task_id=task_id, namespace_id=namespace_id, organization_id=organization_id,
                kind="evaluation.run", resource_id=evaluation_id, total=len(dataset["queries"]),
            ))  # fmt: skip
            started = EvaluationStarted(
                namespace_id=namespace_id, evaluation_id=evaluation_id, task_id=task_id,
                retriever_id=found["retriever_id"], alias_name=alias,
                dataset_id=dataset["dataset_id"], k_values=k_values,
                filter_identical_ids=command.filter_identical_ids,
                query_input_key=command.query_input_key, created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [started], event_ids_for(command.command_id, 1))
        self._spawn(self._evaluate(namespace_id, started, dataset, found))
        return _started(await self.evaluation(namespace_id, evaluation_id))

    async def _evaluate(
        self, namespace_id: str, started: EvaluationStarted, dataset: dict[str, Any],
        found: dict[str, Any],
    ) -> None:  # fmt: skip
        try:
            completed = await self._score(namespace_id, started, dataset, found)
            await self._append(namespace_id, [completed, TaskFinished(
                task_id=started.task_id, status=TaskStatus.COMPLETED,
                result={"evaluation_id": started.evaluation_id,
                        "overall_metrics": completed.overall_metrics},
            )], [uuid.uuid4(), uuid.uuid4()])  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            log.exception("evaluation %s failed", started.evaluation_id)
            error = f"{type(failure).__name__}: {failure}"
            await self._append(namespace_id, [
                EvaluationFailed(namespace_id=namespace_id, evaluation_id=started.evaluation_id,
                                 error=error, failed_at=_now()),
                TaskFinished(task_id=started.task_id, status=TaskStatus.FAILED, error=error),
            ], [uuid.uuid4(), uuid.uuid4()])  # fmt: skip

    async def _score(
        self, namespace_id: str, started: EvaluationStarted, dataset: dict[str, Any],
        found: dict[str, Any],
    ) -> EvaluationCompleted:  # fmt: skip
        queries = [DatasetQuery.model_validate(q) for q in dataset["queries"]]
        field = dataset["document_id_field"]
        depth = max(started.k_values)
        await self._task_event(namespace_id, TaskProgressed(
            task_id=started.task_id, status=TaskStatus.PROCESSING, done=0, total=len(queries)
        ))  # fmt: skip
        runs: dict[str, list[str]] = {}
        latencies: dict[str, float] = {}
        for index, query in enumerate(queries, start=1):
            inputs = inputs_of(query.query_input, started.query_input_key)
            results, latencies[query.query_id] = await self._timed_execute(
                namespace_id, started.retriever_id, inputs, depth
            )
            ranking = ranked_ids(results, field)
            if started.filter_identical_ids:
                ranking = [doc for doc in ranking if doc != query.query_id]
            runs[query.query_id] = ranking[:depth]
            if index % PROGRESS_EVERY == 0:
                await self._task_event(namespace_id, TaskProgressed(
                    task_id=started.task_id, status=TaskStatus.PROCESSING, done=index,
                    total=len(queries),
                ))  # fmt: skip
        qrels = {q.query_id: q.qrels() for q in queries}
        overall, by_k, per_query = evaluate_runs(runs, qrels, started.k_values)
        missing = await self._missing(namespace_id, found["collection_ids"], field, qrels)
        rows = [
            {"query_id": q.query_id, "query_input": q.query_input,
             "relevant_documents": q.qrels(), "retrieved": runs[q.query_id][:10],
             "latency_ms": latencies[q.query_id], "overall": per_query[q.query_id]["overall"],
             "metrics_by_k": {k: v for k, v in per_query[q.query_id].items() if k != "overall"}}
            for q in queries
        ]  # fmt: skip
        values = list(latencies.values())
        return EvaluationCompleted(
            namespace_id=namespace_id, evaluation_id=started.evaluation_id,
            overall_metrics=overall, metrics_by_k={str(k): v for k, v in by_k.items()},
            per_query=rows, query_count=len(queries),
            latency_ms={"p50": percentile(values, 50), "p95": percentile(values, 95),
                        "mean": sum(values) / len(values)},
            missing_documents=missing, completed_at=_now(),
        )  # fmt: skip

    async def _missing(
        self, namespace_id: str, collection_ids: Sequence[str], field: str,
        qrels: dict[str, dict[str, int]],
    ) -> list[str]:  # fmt: skip
        """Judged documents that no document of the retriever's collections carries (they count
        as misses: reported, never an error)."""
        wanted = {doc for judged in qrels.values() for doc in judged}
        for collection_id in collection_ids:
            offset = 0
            while wanted:
                page = await self.directory.documents(
                    namespace_id, collection_id, limit=1000, offset=offset
                )
                for document in page["results"]:
                    value = document.get("fields", {}).get(field, document.get(field))
                    wanted.discard(str(value))
                if not page["has_more"]:
                    break
                offset += len(page["results"])
        return sorted(wanted)

    async def evaluation(self, namespace_id: str, evaluation_id: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.evaluation(tx, namespace_id, evaluation_id)
        if found is None:
            raise NotFoundError(f"evaluation {evaluation_id!r} not found in this namespace")
        return found

    async def list_evaluations(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            rows = await readmodel.evaluations(tx, namespace_id)
        return [{k: v for k, v in row.items() if k != "per_query"} for row in rows]

    # ---- interactions ------------------------------------------------------------------------

    async def record_interactions(
        self, namespace_id: str, command: RecordInteractions
    ) -> dict[str, Any]:
        ids = [
            f"int_{uuid.uuid5(command.command_id, str(i)).hex[:20]}"
            for i in range(len(command.interactions))
        ]
        recorded = InteractionsRecorded(
            namespace_id=namespace_id, interaction_ids=ids, interactions=command.interactions,
            recorded_at=_now(),
        )  # fmt: skip
        await self._append(namespace_id, [recorded], event_ids_for(command.command_id, 1))
        return {"interaction_ids": ids, "count": len(ids)}

    async def list_interactions(
        self, namespace_id: str, *, session_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.interactions(
                tx, namespace_id, session_id=session_id, limit=limit
            )

    async def simulate_sessions(
        self, namespace_id: str, dataset_identifier: str, session_count: int, seed: int
    ) -> dict[str, Any]:
        """Sessions a user with the dataset's judgements would leave: each picks a query (without
        repetition while queries last) and clicks its relevant documents (grade 2 is a long
        click, 3 and more a purchase), identified through the dataset's document id field."""
        if session_count < 1:
            raise InvalidInputError("session_count must be ≥ 1")
        dataset = await self.dataset(namespace_id, dataset_identifier)
        queries = [DatasetQuery.model_validate(q) for q in dataset["queries"]]
        judged = [q for q in queries if any(g >= 1 for g in q.qrels().values())]
        if not judged:
            raise InvalidInputError(f"dataset {dataset['dataset_id']!r} has no relevant document")
        rng = random.Random(seed)
        picks: list[DatasetQuery] = []
        while len(picks) < session_count:
            picks += rng.sample(judged, min(len(judged), session_count - len(picks)))
        kinds = {1: "click", 2: "long_click"}
        interactions = []
        for index, query in enumerate(picks):
            session_id = f"sim-{dataset['dataset_id']}-{seed}-{index}"
            for doc, grade in query.qrels().items():
                if grade >= 1:
                    interactions.append(Interaction(
                        interaction_type=kinds.get(grade, "purchase"),
                        session_id=session_id, query=query.query_input, document_id=doc,
                        document_id_field=dataset["document_id_field"],
                        metadata={"query_id": query.query_id, "simulated": True},
                    ))  # fmt: skip
        reply = await self.record_interactions(
            namespace_id, RecordInteractions(interactions=interactions)
        )
        return {"session_count": len(picks), "interaction_count": reply["count"],
                "dataset_id": dataset["dataset_id"], "seed": seed}  # fmt: skip

    # ---- benchmarks --------------------------------------------------------------------------

    async def create_benchmark(
        self, namespace_id: str, command: CreateBenchmark, *, key_id: str | None
    ) -> dict[str, Any]:
        baseline, _ = await self.resolve_retriever(namespace_id, command.baseline_retriever_id)
        candidates = [
            (await self.resolve_retriever(namespace_id, c))[0]["retriever_id"]
            for c in command.candidate_retriever_ids
        ]
        benchmark_id = _id("bmk", command.command_id, "benchmark")
        async with self.lock:
            async with self.store.transaction() as tx:
                existing = await readmodel.benchmark(tx, namespace_id, benchmark_id)
                named = await readmodel.benchmark(tx, namespace_id, command.benchmark_name)
            if existing is not None:
                return existing
            if named is not None:
                raise ConflictError(f"a benchmark named {command.benchmark_name!r} already exists")
            created = BenchmarkCreated(
                namespace_id=namespace_id, benchmark_id=benchmark_id,
                benchmark_name=command.benchmark_name, description=command.description,
                baseline_retriever_id=baseline["retriever_id"],
                candidate_retriever_ids=candidates, session_count=command.session_count,
                k=command.k, query_input_key=command.query_input_key, seed=command.seed,
                created_by=key_id, created_at=_now(),
            )  # fmt: skip
            await self._append(namespace_id, [created], event_ids_for(command.command_id, 1))
        return await self.benchmark(namespace_id, benchmark_id)

    async def benchmark(self, namespace_id: str, identifier: str) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            found = await readmodel.benchmark(tx, namespace_id, identifier)
        if found is None:
            raise NotFoundError(f"benchmark {identifier!r} not found in this namespace")
        return found

    async def list_benchmarks(self, namespace_id: str) -> list[dict[str, Any]]:
        async with self.store.transaction() as tx:
            return await readmodel.benchmarks(tx, namespace_id)

    async def execute_benchmark(
        self, namespace_id: str, identifier: str, *, organization_id: str
    ) -> dict[str, Any]:
        found = await self.benchmark(namespace_id, identifier)
        async with self.lock:
            found = await self.benchmark(namespace_id, identifier)
            if found["status"] == "PROCESSING":
                raise ConflictError(f"benchmark {found['benchmark_id']!r} is already running")
            async with self.store.transaction() as tx:
                sessions = await readmodel.latest_sessions(tx, namespace_id, found["session_count"])
            if not sessions:
                raise ConflictError(
                    "no recorded sessions to replay: record interactions (POST /v1/interactions) "
                    "or simulate them from a dataset (POST /v1/interactions/simulate)"
                )
            task_id = f"tsk_{uuid.uuid4().hex[:20]}"
            await self._start_task(TaskCreated(
                task_id=task_id, namespace_id=namespace_id, organization_id=organization_id,
                kind="benchmark.execute", resource_id=found["benchmark_id"], total=len(sessions),
            ))  # fmt: skip
            started = BenchmarkStarted(namespace_id=namespace_id,
                                       benchmark_id=found["benchmark_id"], task_id=task_id,
                                       started_at=_now())  # fmt: skip
            await self._append(namespace_id, [started], [uuid.uuid4()])
        self._spawn(self._replay(namespace_id, found, sessions, task_id))
        return {"benchmark_id": found["benchmark_id"], "task_id": task_id,
                "status": "PROCESSING", "session_count": len(sessions)}  # fmt: skip

    async def _replay(
        self, namespace_id: str, found: dict[str, Any], sessions: list[str], task_id: str
    ) -> None:
        benchmark_id = found["benchmark_id"]
        try:
            results = await self._replay_sessions(namespace_id, found, sessions, task_id)
            await self._append(namespace_id, [
                BenchmarkCompleted(namespace_id=namespace_id, benchmark_id=benchmark_id,
                                   task_id=task_id, results=results, completed_at=_now()),
                TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED,
                             result={"benchmark_id": benchmark_id}),
            ], [uuid.uuid4(), uuid.uuid4()])  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            log.exception("benchmark %s failed", benchmark_id)
            error = f"{type(failure).__name__}: {failure}"
            await self._append(namespace_id, [
                BenchmarkFailed(namespace_id=namespace_id, benchmark_id=benchmark_id,
                                task_id=task_id, error=error, failed_at=_now()),
                TaskFinished(task_id=task_id, status=TaskStatus.FAILED, error=error),
            ], [uuid.uuid4(), uuid.uuid4()])  # fmt: skip

    async def _replay_sessions(
        self, namespace_id: str, found: dict[str, Any], session_ids: list[str], task_id: str
    ) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            recorded = await readmodel.session_interactions(tx, namespace_id, session_ids)
        sessions, skipped = replayable_sessions(recorded, session_ids)
        if not sessions:
            raise InvalidInputError(
                f"none of the {len(session_ids)} sessions has a query and a positive interaction"
            )
        k, key = found["k"], found["query_input_key"]
        retrievers = [found["baseline_retriever_id"], *found["candidate_retriever_ids"]]
        depth = max(k, 100)
        scores: dict[str, dict[str, Any]] = {}
        for step, retriever_id in enumerate(retrievers):
            rows = []
            for session in sessions:
                results, latency = await self._timed_execute(
                    namespace_id, retriever_id, inputs_of(session["query"], key), depth
                )
                ranking = ranked_ids(results, session["field"])
                rows.append(session_scores(ranking, session["judged"], k) | {"latency_ms": latency})
            scores[retriever_id] = summarize(rows, k)
            await self._task_event(namespace_id, TaskProgressed(
                task_id=task_id, status=TaskStatus.PROCESSING,
                done=(step + 1) * len(sessions), total=len(retrievers) * len(sessions),
            ))  # fmt: skip
        baseline = scores[found["baseline_retriever_id"]]
        comparisons = {
            candidate: compare(baseline, scores[candidate], seed=found["seed"])
            for candidate in found["candidate_retriever_ids"]
        }
        for row in scores.values():
            row.pop("rows")
        return {
            "k": k, "sessions_replayed": len(sessions), "sessions_skipped": skipped,
            "baseline_retriever_id": found["baseline_retriever_id"],
            "retrievers": scores, "comparisons": comparisons,
        }  # fmt: skip

    # ---- collections -------------------------------------------------------------------------

    async def diff_collections(self, namespace_id: str, a: str, b: str) -> dict[str, Any]:
        known = await self.directory.collections(namespace_id)

        def pick(identifier: str) -> dict[str, Any]:
            for collection in known:
                if identifier in (collection["collection_id"], collection.get("collection_name")):
                    return collection
            raise NotFoundError(f"collection {identifier!r} not found in this namespace")

        left, right = pick(a), pick(b)
        return {
            "collection_a": _collection_summary(left),
            "collection_b": _collection_summary(right),
        } | classify(left["feature_extractor"], right["feature_extractor"])

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
        ack = NamespaceForkAcknowledged(
            namespace_id=event.namespace_id, service=GROUP, task_id=event.task_id,
            mapping=mapping, error=error,
        )  # fmt: skip
        await self._append(
            event.namespace_id, [ack], [uuid.uuid5(envelope.event_id, "evaluation-ack")]
        )

    async def _fork_namespace(self, event: NamespaceForked, envelope: Envelope) -> dict[str, str]:
        clone, parent = event.namespace_id, event.parent_namespace_id
        async with self.lock:
            async with self.store.transaction() as tx:
                datasets = await readmodel.datasets(tx, parent)
            mapping = {d["dataset_id"]: derive(clone, d["dataset_id"]) for d in datasets}
            events: list[Event] = [EvaluationNamespaceForked(
                namespace_id=clone, parent_namespace_id=parent, at_position=event.at_position,
                mapping=mapping,
            )]  # fmt: skip
            for found in datasets:
                events.append(DatasetCreated(
                    namespace_id=clone, dataset_id=mapping[found["dataset_id"]],
                    dataset_name=found["dataset_name"], description=found["description"],
                    document_id_field=found["document_id_field"], queries=found["queries"],
                    created_by=found["created_by"], created_at=found["created_at"],
                ))  # fmt: skip
            ids = [
                uuid.uuid5(envelope.event_id, f"evaluation-fork-{i}") for i in range(len(events))
            ]
            await self._append(clone, events, ids)
        return mapping


# ---- benchmark arithmetic (pure) -----------------------------------------------------------


def replayable_sessions(
    recorded: Sequence[dict[str, Any]], session_ids: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """Per session: its first query, and the strongest grade each document got; sessions with
    no query or no positive signal cannot be scored (counted as skipped)."""
    by_session: dict[str, dict[str, Any]] = {
        s: {"session_id": s, "query": None, "judged": {}, "field": None} for s in session_ids
    }
    for item in recorded:
        session = by_session.get(item["session_id"])
        if session is None:
            continue
        if session["query"] is None and item.get("query") not in (None, "", {}):
            session["query"] = item["query"]
        document = item.get("document_id")
        if document is not None:
            grade = INTERACTION_GRADES[item["interaction_type"]]
            session["judged"][document] = max(grade, session["judged"].get(document, 0))
            session["field"] = session["field"] or item.get("document_id_field")
    usable = [
        s for s in by_session.values()
        if s["query"] is not None and any(g >= 1 for g in s["judged"].values())
    ]  # fmt: skip
    return usable, len(session_ids) - len(usable)


def session_scores(ranking: Sequence[str], judged: dict[str, int], k: int) -> dict[str, Any]:
    metrics = query_metrics(ranking, judged, k)
    positions = {doc: rank for rank, doc in enumerate(ranking, start=1)}
    clicked = [positions[d] for d, grade in judged.items() if grade >= 1 and d in positions]
    return {
        "ndcg": metrics["ndcg"], "mrr": query_metrics(ranking, judged)["mrr"],
        "recall": metrics["recall"], "clicked_ranks": clicked,
        "clicked_total": sum(1 for g in judged.values() if g >= 1),
    }  # fmt: skip


def summarize(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    ranks = [rank for row in rows for rank in row["clicked_ranks"]]
    total = sum(row["clicked_total"] for row in rows)
    latencies = [row["latency_ms"] for row in rows]
    count = len(rows)
    return {
        "ndcg_at_k": sum(r["ndcg"] for r in rows) / count,
        "mrr": sum(r["mrr"] for r in rows) / count,
        "recall_at_k": sum(r["recall"] for r in rows) / count,
        "mean_clicked_rank": sum(ranks) / len(ranks) if ranks else None,
        "clicked_found": len(ranks) / total if total else 0.0,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "per_session_ndcg": [r["ndcg"] for r in rows],
        "latencies_ms": latencies,
        "rows": rows,
    }


def compare(baseline: dict[str, Any], candidate: dict[str, Any], *, seed: int) -> dict[str, Any]:
    old, new = baseline["per_session_ndcg"], candidate["per_session_ndcg"]
    deltas = [b - a for a, b in zip(old, new, strict=True)]
    test = paired_test(old, new, seed=seed)

    def delta(key: str) -> float | None:
        a, b = baseline[key], candidate[key]
        return None if a is None or b is None else b - a

    return {
        "deltas": {
            "ndcg_at_k": delta("ndcg_at_k"), "mrr": delta("mrr"),
            "recall_at_k": delta("recall_at_k"), "mean_clicked_rank": delta("mean_clicked_rank"),
            "latency_p50_ms": candidate["latency_ms"]["p50"] - baseline["latency_ms"]["p50"],
            "latency_p95_ms": candidate["latency_ms"]["p95"] - baseline["latency_ms"]["p95"],
        },
        "sessions_improved": sum(1 for d in deltas if d > NEUTRAL),
        "sessions_degraded": sum(1 for d in deltas if d < -NEUTRAL),
        "sessions_neutral": sum(1 for d in deltas if abs(d) <= NEUTRAL),
        "significance": test.model_dump(),
        "verdict": (
            "neutral" if not test.significant
            else "improved" if test.mean_delta > 0 else "degraded"
        ),
    }  # fmt: skip


def _summary(dataset: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dataset.items() if k != "queries"}


def _started(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {
        key: evaluation.get(key)
        for key in ("evaluation_id", "task_id", "status", "retriever_id", "alias_name",
                    "dataset_id", "k_values")
    }  # fmt: skip


def _collection_summary(collection: dict[str, Any]) -> dict[str, Any]:
    return {
        "collection_id": collection["collection_id"],
        "collection_name": collection.get("collection_name"),
        "feature_extractor": collection["feature_extractor"],
        "feature_uri": collection["feature_uri"],
        "dimension": collection["space"]["dimension"],
    }


__all__ = ["CollectionDirectory", "EvaluationService", "Retrieval", "StartTask"]
