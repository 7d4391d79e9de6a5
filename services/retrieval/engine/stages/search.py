"""``feature_search``: one or more vector searches ("legs"), fused into one ranking.

Each leg names a feature URI; it searches every collection of the retriever that holds that
vector space (scores of one space are comparable across collections, so their hits are merged
by score). Legs of different models (an old and a new embedding model, dense and BM25) are
fused by ``fusion`` (see ``fusion.py``); a single leg keeps its raw scores. A query can only
search a space built by the same extractor version, so a feature URI no collection holds is
refused at plan time, naming the URI.

``input_mode``: ``text`` embeds the rendered query with the leg's extractor (through the
inference cache); ``vector`` takes the rendered value as the vector (a list of numbers, or
``{"indices": [...], "values": [...]}`` for a sparse space); ``document`` takes it as a document
id and searches with that document's stored vector ("more like this").

When earlier stages produced candidates, the search is restricted to them. Whole stage results
are cached under the collections' signatures, so a changed collection misses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, JsonValue, ValidationError

from libs.errors import InvalidInputError, NotFoundError, OffshootError
from libs.extractors import DenseEmbedding, FeatureUri
from libs.vectors import DenseVector, ScoredPoint, SparseVector, View
from libs.vectors import filters as store
from services.retrieval.engine.errors import validation_summary
from services.retrieval.engine.fusion import FusionMethod, Leg, fuse
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import (
    REGISTRY,
    PlanContext,
    RunContext,
    Stage,
    StageParameters,
)

__all__ = ["FeatureSearch", "FeatureSearchParameters", "SearchLeg", "identity"]

MAX_RESTRICTION = 10_000


def identity(point: ScoredPoint) -> str:
    """What makes hits of two collections one item: the same source input and chunk. A
    collection cloned onto another model (a migration's new collection, a BM25 twin) holds the
    same abstracts under document ids of its own, so fusing by document id would list each
    abstract once per model instead of combining its scores."""
    source = point.payload.get("source_document_id") or point.payload.get("root_object_id")
    if not source:
        return point.document_id
    return f"{source}#{point.payload.get('chunk_index') or 0}"


def _best_first(item: tuple[str, float]) -> tuple[float, str]:
    return -item[1], item[0]


class SearchLeg(StageParameters):
    feature_uri: str = Field(
        description="The vector space to search, e.g. offshoot://minilm@v1/text_embedding."
    )
    query: str | tuple[float, ...] = Field(
        default="{{INPUT.query}}",
        description="Template (text, document id, or a whole-input vector) or a literal vector.",
    )
    input_mode: Literal["text", "vector", "document"] = "text"
    top_k: int = Field(default=10, ge=1, le=10_000)
    min_score: float | None = Field(default=None, description="Drop hits scoring below this.")
    weight: float = Field(default=1.0, ge=0.0, le=1_000.0, description="Weight in the fusion.")


class FeatureSearchParameters(StageParameters):
    searches: tuple[SearchLeg, ...] = Field(min_length=1, max_length=8)
    final_top_k: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Documents kept after fusion (default: the largest top_k).",
    )
    fusion: FusionMethod = "rrf"
    rrf_k: int = Field(default=60, ge=1, le=10_000)


@REGISTRY.register
class FeatureSearch(Stage[FeatureSearchParameters]):
    stage_id: ClassVar[str] = "feature_search"
    stage_type = "filter"
    description: ClassVar[str] = (
        "Vector search over one or more feature URIs (text, vector or document queries), fused "
        "with rrf, weighted, max or dbsf."
    )
    parameters_model = FeatureSearchParameters

    @classmethod
    def normalize(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        """``{feature_uri, query, limit}`` (one search, as published retriever examples write
        it) is the same as ``{searches: [{feature_uri, query, top_k: limit}]}``."""
        if "feature_uri" not in parameters or "searches" in parameters:
            return parameters
        shared = {"final_top_k", "fusion", "rrf_k"}
        leg = {k: v for k, v in parameters.items() if k not in shared}
        if "limit" in leg:
            leg["top_k"] = leg.pop("limit")
        return {"searches": [leg], **{k: v for k, v in parameters.items() if k in shared}}

    def __init__(self, name: str, parameters: FeatureSearchParameters) -> None:
        super().__init__(name, parameters)
        self.prefilter: store.Filter | None = None
        self.with_vectors: frozenset[str] = frozenset()

    def add_prefilter(self, extra: store.Filter) -> None:
        """A pushed-down attribute filter (AND-ed with any earlier one)."""
        self.prefilter = store.all_of(self.prefilter, extra)

    @property
    def feature_uris(self) -> list[str]:
        return list(dict.fromkeys(leg.feature_uri for leg in self.parameters.searches))

    @property
    def final_top_k(self) -> int:
        explicit = self.parameters.final_top_k
        return explicit or max(leg.top_k for leg in self.parameters.searches)

    def templates(self) -> list[tuple[str, str]]:
        return [
            (f"searches[{i}].query", leg.query)
            for i, leg in enumerate(self.parameters.searches)
            if isinstance(leg.query, str)
        ]

    def explain(self) -> dict[str, JsonValue]:
        explained = super().explain()
        explained["pushed_filter"] = (
            None if self.prefilter is None else self.prefilter.model_dump(mode="json")
        )
        explained["with_vectors"] = [uri for uri in sorted(self.with_vectors)]
        return explained

    def check(self, context: PlanContext) -> None:
        for i, leg in enumerate(self.parameters.searches):
            field = f"searches[{i}].feature_uri"
            try:
                FeatureUri.parse(leg.feature_uri)
            except InvalidInputError as error:
                raise self.invalid(field, str(error)) from None
            holders = context.holding(leg.feature_uri)
            if not holders:
                held = ", ".join(context.held_uris()) or "none"
                ids = ", ".join(c.collection_id for c in context.collections)
                raise self.invalid(
                    field,
                    f"{leg.feature_uri} is not a vector space of the retriever's collections "
                    f"({ids}), which hold {held}: a query can only search a space built by the "
                    "same extractor version",
                )
            space = holders[0].views[leg.feature_uri].space
            if leg.input_mode == "text":
                if not isinstance(leg.query, str):
                    raise self.invalid(
                        f"searches[{i}].query", "input_mode text takes a string (template)"
                    )
                try:
                    context.extractor_for(leg.feature_uri)
                except OffshootError as error:
                    raise self.invalid(field, str(error)) from None
            elif leg.input_mode == "vector" and not isinstance(leg.query, str):
                self._vector(i, list(leg.query), space.kind, space.dimension, leg.feature_uri)
            elif leg.input_mode == "document" and not isinstance(leg.query, str):
                raise self.invalid(
                    f"searches[{i}].query", "input_mode document takes a document id"
                )

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        if not context.is_source and not candidates:
            return []  # earlier stages left nothing to search among
        restriction = self._restriction(candidates, context)
        queries = [self._query_value(i, context) for i in range(len(self.parameters.searches))]
        key = self._cache_key(queries, restriction, context)
        if key is not None:
            cached = context.stage_cache_get(key)
            context.stage_hits[self.name] = cached is not None
            if cached is not None:
                return list(cached)
        where = store.all_of(self.prefilter, restriction)
        legs: list[list[tuple[str, float]]] = []  # (item identity, score) best first
        hits: dict[str, tuple[str, ScoredPoint]] = {}
        vectors: dict[str, dict[str, DenseVector | SparseVector]] = {}
        for i, leg in enumerate(self.parameters.searches):
            ranked = []
            for collection_id, point in await self._search_leg(i, queries[i], where, context):
                item = identity(point)
                ranked.append((item, point.score))
                hits.setdefault(item, (collection_id, point))
                if point.vector is not None:
                    vectors.setdefault(item, {})[leg.feature_uri] = point.vector
            # ties broken by identity: the store's order among equal scores varies by call
            legs.append(sorted(ranked, key=_best_first))
        result = self._fused(legs, hits, vectors)
        if key is not None:
            context.stage_cache_put(key, tuple(result))
        return result

    def _fused(
        self,
        legs: list[list[tuple[str, float]]],
        hits: Mapping[str, tuple[str, ScoredPoint]],
        vectors: Mapping[str, Mapping[str, DenseVector | SparseVector]],
    ) -> list[Candidate]:
        """One candidate per item (see ``identity``), shown as the first leg's document of it."""
        names = self._leg_names()
        per_leg: dict[str, dict[str, float]] = {}
        for name, ranked in zip(names, legs, strict=True):
            for item, score in ranked:
                per_leg.setdefault(item, {})[name] = score
        if len(legs) == 1:
            ranking = legs[0]
        else:
            ranking = fuse(
                self.parameters.fusion,
                [
                    Leg(ranked=ranked, weight=leg.weight)
                    for ranked, leg in zip(legs, self.parameters.searches, strict=True)
                ],
                k=self.parameters.rrf_k,
            )
        return [
            Candidate(
                document_id=hits[item][1].document_id,
                collection_id=hits[item][0],
                score=score,
                payload=hits[item][1].payload,
                vectors=dict(vectors.get(item, {})),
                legs=per_leg.get(item, {}),
            )
            for item, score in ranking[: self.final_top_k]
        ]

    def _leg_names(self) -> list[str]:
        """Legs are named by feature URI, with ``#i`` when two legs search the same space."""
        uris = [leg.feature_uri for leg in self.parameters.searches]
        return [uri if uris.count(uri) == 1 else f"{uri}#{i}" for i, uri in enumerate(uris)]

    def _restriction(
        self, candidates: Sequence[Candidate], context: RunContext
    ) -> store.Filter | None:
        if context.is_source:
            return None
        ids = list(dict.fromkeys(c.document_id for c in candidates))[:MAX_RESTRICTION]
        return store.In(field="document_id", values=tuple(ids)) if ids else None

    def _query_value(self, i: int, context: RunContext) -> JsonValue:
        leg = self.parameters.searches[i]
        if isinstance(leg.query, str):
            return self.render(f"searches[{i}].query", leg.query, context.inputs)
        return list(leg.query)

    def _cache_key(
        self, queries: list[JsonValue], restriction: store.Filter | None, context: RunContext
    ) -> str | None:
        if context.signatures is None:
            return None
        searched = sorted(
            c.collection_id
            for c in context.collections
            if any(uri in c.views for uri in self.feature_uris)
        )
        material = {
            "stage": self.stage_id,
            "parameters": self.parameters.model_dump(mode="json"),
            "queries": queries,
            "prefilter": None if self.prefilter is None else self.prefilter.model_dump(mode="json"),
            "restriction": None if restriction is None else restriction.model_dump(mode="json"),
            "with_vectors": sorted(self.with_vectors),
            "collections": {cid: context.signatures.get(cid) for cid in searched},
        }
        encoded = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()

    async def _search_leg(
        self, i: int, query: JsonValue, where: store.Filter | None, context: RunContext
    ) -> list[tuple[str, ScoredPoint]]:
        leg = self.parameters.searches[i]
        views = [
            (c.collection_id, c.views[leg.feature_uri])
            for c in context.collections
            if leg.feature_uri in c.views
        ]
        vector = await self._query_vector(i, query, views, context)
        if isinstance(vector, SparseVector) and not vector.indices:
            return []  # every query term was a stop word: nothing can match
        found: list[tuple[str, ScoredPoint]] = []
        for collection_id, view in views:
            points = await context.store.search(
                view=view,
                query=vector,
                top_k=leg.top_k,
                filter=where,
                with_vectors=leg.feature_uri in self.with_vectors,
            )
            found.extend((collection_id, p) for p in points)
        found.sort(key=lambda hit: -hit[1].score)
        best: dict[str, tuple[str, ScoredPoint]] = {}
        for collection_id, point in found:
            if leg.min_score is not None and point.score < leg.min_score:
                continue
            best.setdefault(point.document_id, (collection_id, point))
        return list(best.values())[: leg.top_k]

    async def _query_vector(
        self,
        i: int,
        query: JsonValue,
        views: list[tuple[str, View]],
        context: RunContext,
    ) -> DenseVector | SparseVector:
        leg = self.parameters.searches[i]
        space = views[0][1].space
        field = f"searches[{i}].query"
        if leg.input_mode == "text":
            if not isinstance(query, str) or not query.strip():
                raise self.invalid(
                    field, f"input_mode text needs a non-empty string, got {query!r}"
                )
            embedding = await context.embed_query(leg.feature_uri, query)
            if isinstance(embedding, DenseEmbedding):
                return DenseVector(
                    feature_uri=leg.feature_uri,
                    values=tuple(float(v) for v in embedding.values),
                )
            return SparseVector(
                feature_uri=leg.feature_uri,
                indices=tuple(int(v) for v in embedding.indices),
                values=tuple(float(v) for v in embedding.values),
            )
        if leg.input_mode == "vector":
            return self._vector(i, query, space.kind, space.dimension, leg.feature_uri)
        if not isinstance(query, str) or not query:
            raise self.invalid(field, f"input_mode document needs a document id, got {query!r}")
        for _, view in views:
            records = await context.store.get(view=view, document_ids=[query], with_vectors=True)
            if records and records[0].vector is not None:
                return records[0].vector
        raise NotFoundError(
            f"stage {self.name!r} ({self.stage_id}): {field}: document {query!r} is not in the "
            f"space {leg.feature_uri} of the retriever's collections"
        )

    def _vector(
        self, i: int, value: JsonValue, kind: str, dimension: int, feature_uri: str
    ) -> DenseVector | SparseVector:
        field = f"searches[{i}].query"
        try:
            if kind == "sparse":
                if not isinstance(value, dict):
                    raise ValueError("a sparse space takes {indices: [...], values: [...]}")
                return SparseVector(
                    feature_uri=feature_uri,
                    indices=value.get("indices"),
                    values=value.get("values"),
                )
            if not isinstance(value, list):
                raise ValueError(f"a dense space takes a list of {dimension} numbers")
            vector = DenseVector(feature_uri=feature_uri, values=value)
        except ValidationError as error:
            raise self.invalid(field, validation_summary(error)) from None
        except ValueError as error:
            raise self.invalid(field, str(error)) from None
        if len(vector.values) != dimension:
            raise self.invalid(
                field,
                f"{feature_uri} vectors have {dimension} dimensions, got {len(vector.values)}",
            )
        return vector
