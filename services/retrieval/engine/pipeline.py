"""The engine: plan a retriever (validate everything up front), explain it, execute it.

Why plan separately: a retriever is immutable, so every check that does not depend on a
request's inputs (stage ids, parameter types, templates against ``input_schema``, feature URIs
against the collections' spaces, a filter stage first) runs once when it is created and again
cheaply per request, and a request can only fail on its own inputs. Planning also decides where
attribute filters run (pushed into an adjacent search or in Python) and which searches return
stored vectors for later stages (``mmr``, ``deduplicate``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from libs import telemetry
from libs.errors import InvalidInputError
from libs.extractors import (
    CachedExtractor,
    Embedding,
    FeatureExtractor,
    InferenceCache,
    extractor_for_uri,
)
from libs.extractors.cache import content_hash
from libs.vectors import VectorStore
from services.retrieval.engine.cache import LruCache, SignatureFn, stable_key
from services.retrieval.engine.inputs import check_inputs, declared_inputs
from services.retrieval.engine.models import (
    CacheReport,
    Candidate,
    ExecutionResult,
    RetrievedDocument,
    RetrieverDefinition,
    StageReport,
)
from services.retrieval.engine.stages import REGISTRY, PlanContext, RunContext, Stage
from services.retrieval.engine.stages.attribute import AttributeFilter
from services.retrieval.engine.stages.base import StageDescription, StageRegistry
from services.retrieval.engine.stages.rerank import Rerank
from services.retrieval.engine.stages.search import FeatureSearch

__all__ = ["Plan", "RetrievalEngine"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated retriever: stages in execution order, ready to run with any inputs."""

    retriever: RetrieverDefinition
    steps: tuple[Stage[Any], ...]
    feature_uris: tuple[str, ...]
    fingerprint: str

    def explain(self) -> dict[str, JsonValue]:
        """The plan without running it: stages in execution order with their resolved
        parameters (pushed-down filters, vector fetching, defaults filled in)."""
        return {
            "retriever_id": self.retriever.retriever_id,
            "collections": [c.collection_id for c in self.retriever.collections],
            "feature_uris": list(self.feature_uris),
            "stages": [
                {
                    "stage_name": step.name,
                    "stage_id": step.stage_id,
                    "stage_type": step.stage_type,
                    "source": i == 0,
                    "parameters": step.explain(),
                }
                for i, step in enumerate(self.steps)
            ],
        }


class RetrievalEngine:
    """Runs retrievers over a ``VectorStore``; pure over its ports (no HTTP, no event store).

    ``signature(collection)`` is the caller's hash of a collection's state; without it nothing
    is cached (freshness could not be known). Query embeddings always go through
    ``inference_cache``.
    """

    def __init__(
        self,
        *,
        store: VectorStore,
        inference_cache: InferenceCache,
        signature: SignatureFn | None = None,
        extractor_for: Callable[[str], FeatureExtractor] = extractor_for_uri,
        registry: StageRegistry = REGISTRY,
        execution_cache_size: int = 1024,
        stage_cache_size: int = 4096,
        cache_ttl_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._inference_cache = inference_cache
        self._signature = signature
        self._extractor_for = extractor_for
        self._registry = registry
        self._extractors: dict[str, CachedExtractor] = {}
        self.executions: LruCache[ExecutionResult] = LruCache(
            execution_cache_size, cache_ttl_seconds
        )
        self.stage_results: LruCache[tuple[Candidate, ...]] = LruCache(
            stage_cache_size, cache_ttl_seconds
        )

    def stages(self) -> list[StageDescription]:
        """Every stage with its parameters' JSON Schema (``GET /v1/retrievers/stages``)."""
        return self._registry.describe()

    def plan(self, retriever: RetrieverDefinition) -> Plan:
        """Validate the whole retriever; raises ``InvalidInputError``/``NotFoundError`` naming
        the stage and the field at fault."""
        if not retriever.stages:
            raise InvalidInputError("stages: a retriever needs at least one stage")
        if not retriever.collections:
            raise InvalidInputError("collections: a retriever needs at least one collection")
        names = [s.stage_name for s in retriever.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"stages: stage names must be unique, repeated: {duplicates}")
        input_names = declared_inputs(retriever.input_schema)
        built = [self._registry.build(spec) for spec in retriever.stages]
        first = built[0]
        if first.stage_type != "filter":
            raise first.invalid(
                "stage_type",
                f"a pipeline starts with a filter stage (feature_search or attribute_filter), "
                f"not a {first.stage_type} stage",
            )
        searched: list[str] = []
        for stage in built:
            for field, source in stage.templates():
                template = stage.compiled(field, source)
                unknown = sorted(template.inputs - input_names) if input_names is not None else []
                if unknown:
                    raise stage.invalid(
                        field,
                        f"template reads input(s) {unknown} that the retriever's input_schema "
                        f"does not declare (declared: {sorted(input_names or ())})",
                    )
            stage.check(
                PlanContext(
                    collections=retriever.collections,
                    input_names=input_names,
                    extractor_for=self._extractor_for,
                    searched_uris=tuple(searched),
                )
            )
            if isinstance(stage, FeatureSearch):
                searched.extend(stage.feature_uris)
        steps = _push_down(built)
        _request_vectors(steps)
        used = list(dict.fromkeys(searched))
        used += [s.parameters.feature_uri for s in steps if isinstance(s, Rerank)]
        fingerprint = stable_key(retriever.model_dump(mode="json"))
        return Plan(retriever, tuple(steps), tuple(dict.fromkeys(used)), fingerprint)

    def explain(self, retriever: RetrieverDefinition) -> dict[str, JsonValue]:
        return self.plan(retriever).explain()

    async def execute(
        self, plan: Plan | RetrieverDefinition, inputs: Mapping[str, JsonValue]
    ) -> ExecutionResult:
        """Run the plan with the request's inputs: ranked documents, per-stage reports, the
        feature URIs used, and what came from caches. Traced (a span per stage) and timed
        (``offshoot.retrieval.query.duration``, by execution-cache hit or error type)."""
        started = time.perf_counter()
        retriever = plan.retriever if isinstance(plan, Plan) else plan
        attributes: dict[str, str | bool] = {}
        with telemetry.get_tracer().start_as_current_span(
            "retriever.execute", attributes={"offshoot.retriever_id": retriever.retriever_id}
        ):
            try:
                result = await self._execute(plan, inputs, started)
                attributes["offshoot.cache_hit"] = result.cache.execution_hit
                return result
            except BaseException as error:  # cancelled queries are timed too
                attributes["error.type"] = type(error).__name__
                raise
            finally:
                telemetry.instruments().query_duration.record(_ms(started), attributes)

    async def _execute(
        self, plan: Plan | RetrieverDefinition, inputs: Mapping[str, JsonValue], started: float
    ) -> ExecutionResult:
        if isinstance(plan, RetrieverDefinition):
            plan = self.plan(plan)
        retriever = plan.retriever
        check_inputs(retriever.input_schema, inputs)
        signatures = await self._signatures(plan)
        execution_key = None
        if signatures is not None:
            execution_key = stable_key(
                {
                    "retriever": retriever.retriever_id,
                    "plan": plan.fingerprint,
                    "inputs": dict(inputs),
                    "signatures": signatures,
                }
            )
            cached = self.executions.get(execution_key)
            if cached is not None:
                return cached.model_copy(
                    update={
                        "cache": cached.cache.model_copy(update={"execution_hit": True}),
                        "duration_ms": _ms(started),
                    }
                )
        embedding_hits: dict[str, bool] = {}
        context = RunContext(
            store=self._store,
            inputs=inputs,
            collections=retriever.collections,
            embed_query=lambda uri, text: self._embed_query(uri, text, embedding_hits),
            embed_documents=self._embed_documents,
            signatures=signatures,
            stage_cache_get=self.stage_results.get,
            stage_cache_put=self.stage_results.put,
        )
        candidates: list[Candidate] = []
        reports = []
        tracer = telemetry.get_tracer()
        for i, step in enumerate(plan.steps):
            context.is_source = i == 0
            stage_started = time.perf_counter()
            incoming = len(candidates)
            with tracer.start_as_current_span(
                f"stage {step.stage_id}",
                attributes={"offshoot.stage_id": step.stage_id, "offshoot.stage_name": step.name},
            ) as span:
                candidates = await step.run(candidates, context)
                report = StageReport(
                    stage_name=step.name,
                    stage_id=step.stage_id,
                    stage_type=step.stage_type,
                    input_count=incoming,
                    output_count=len(candidates),
                    duration_ms=_ms(stage_started),
                    cache_hit=context.stage_hits.get(step.name, False),
                    pushed_down=isinstance(step, AttributeFilter) and step.pushed_down,
                )
                span.set_attributes(
                    {
                        "offshoot.stage.input_count": incoming,
                        "offshoot.stage.output_count": report.output_count,
                        "offshoot.stage.cache_hit": report.cache_hit,
                    }
                )
            reports.append(report)
        result = ExecutionResult(
            retriever_id=retriever.retriever_id,
            documents=tuple(RetrievedDocument.of(c) for c in candidates),
            stages=tuple(reports),
            feature_uris=plan.feature_uris,
            cache=CacheReport(
                stage_hits=dict(context.stage_hits),
                query_embedding_hits=embedding_hits,
                enabled=signatures is not None,
            ),
            duration_ms=_ms(started),
            signatures=dict(signatures or {}),
        )
        if execution_key is not None:
            self.executions.put(execution_key, result)
        return result

    async def _signatures(self, plan: Plan) -> dict[str, str] | None:
        if self._signature is None:
            return None
        collections = plan.retriever.collections
        values = await asyncio.gather(*(self._signature(c) for c in collections))
        return {c.collection_id: v for c, v in zip(collections, values, strict=True)}

    def _extractor(self, feature_uri: str) -> CachedExtractor:
        extractor = self._extractors.get(feature_uri)
        if extractor is None:
            extractor = CachedExtractor(self._extractor_for(feature_uri), self._inference_cache)
            self._extractors[feature_uri] = extractor
        return extractor

    async def _embed_query(self, feature_uri: str, text: str, hits: dict[str, bool]) -> Embedding:
        """One query embedding through the inference cache, noting whether it was a hit (looked
        up first so the flag belongs to this request, not to a shared counter)."""
        extractor = self._extractor(feature_uri)
        key = content_hash(text)
        known = await asyncio.to_thread(
            self._inference_cache.get_many, extractor.info, "query", [key]
        )
        hits[feature_uri] = hits.get(feature_uri, True) and key in known
        if key in known:
            return known[key]
        (embedding,) = await asyncio.to_thread(extractor.embed, [text], role="query")
        return embedding

    async def _embed_documents(self, feature_uri: str, texts: list[str]) -> list[Embedding]:
        extractor = self._extractor(feature_uri)
        return await asyncio.to_thread(extractor.embed, texts, role="document")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _push_down(stages: list[Stage[Any]]) -> list[Stage[Any]]:
    """Execution order with attribute filters folded into adjacent searches: a leading
    ``attribute_filter`` right before a ``feature_search`` is pushed into it (and its Python
    remainder runs after it); attribute filters right after a search are pushed into it."""
    steps = list(stages)
    if (
        len(steps) > 1
        and isinstance(steps[0], AttributeFilter)
        and isinstance(steps[1], FeatureSearch)
    ):
        _fold(steps[0], steps[1])
        steps[0], steps[1] = steps[1], steps[0]
    # Every filter in the run of attribute filters right after a search is adjacent to it:
    # filters commute, so each one's store part can join the search's filter.
    for i, stage in enumerate(steps):
        if isinstance(stage, FeatureSearch):
            j = i + 1
            while j < len(steps) and isinstance(following := steps[j], AttributeFilter):
                _fold(following, stage)
                j += 1
    return steps


def _fold(attribute: AttributeFilter, search: FeatureSearch) -> None:
    if attribute.pushed_down:
        return
    pushed = attribute.push_down()
    if pushed is not None:
        search.add_prefilter(pushed)


def _request_vectors(steps: list[Stage[Any]]) -> None:
    """Searches return stored vectors that later stages will read, saving a fetch."""
    for i, step in enumerate(steps):
        if isinstance(step, FeatureSearch):
            later: set[str] = set()
            for following in steps[i + 1 :]:
                later |= following.vectors_needed()
            step.with_vectors = frozenset(later & set(step.feature_uris))
