"""What goes into the engine and what comes out: retriever definitions, collection records,
ranked documents, reports. Frozen: a plan and a cached result are shared between requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from libs.vectors import DenseVector, SparseVector, View

__all__ = [
    "CacheReport",
    "Candidate",
    "CollectionRef",
    "ExecutionResult",
    "RetrievedDocument",
    "RetrieverDefinition",
    "StageConfig",
    "StageReport",
    "StageSpec",
    "StageType",
]

StageType = Literal["filter", "sort", "reduce"]
LINEAGE_FIELDS = ("root_object_id", "lineage_path", "source_object_id")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageConfig(_Frozen):
    stage_id: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


class StageSpec(_Frozen):
    """One stage as a retriever stores it (``stage_name`` is unique within the retriever)."""

    stage_name: str = Field(min_length=1, max_length=100)
    stage_type: StageType
    config: StageConfig


class CollectionRef(_Frozen):
    """A collection as the engine sees it, resolved by the caller: its id and, per feature URI
    it holds, the vector-store view to read (the view carries its space, so the URI → space
    mapping is ``views[uri].space``). Built server-side from the namespace's read model, never
    from user input."""

    collection_id: str = Field(min_length=1)
    views: dict[str, View] = Field(min_length=1)

    @model_validator(mode="after")
    def _views_match_uris(self) -> CollectionRef:
        for uri, view in self.views.items():
            if view.space.feature_uri != uri:
                raise ValueError(
                    f"collection {self.collection_id}: view for {uri} is of the space "
                    f"{view.space.feature_uri}"
                )
        return self


class RetrieverDefinition(_Frozen):
    """What a plan is made of. ``input_schema`` is the retriever's JSON Schema for ``inputs``;
    templates may only read inputs it declares (when it is given)."""

    retriever_id: str = "ret_adhoc"
    stages: tuple[StageSpec, ...]
    collections: tuple[CollectionRef, ...]
    input_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A document moving through the pipeline. ``vectors`` holds the stored dense vectors a
    later stage asked for (by feature URI); ``legs`` the per-search scores before fusion."""

    document_id: str
    collection_id: str
    score: float
    payload: Mapping[str, JsonValue]
    vectors: Mapping[str, DenseVector | SparseVector] = field(default_factory=dict)
    legs: Mapping[str, float] = field(default_factory=dict)

    def rescored(self, score: float) -> Candidate:
        return replace(self, score=score)


class RetrievedDocument(_Frozen):
    """One result: the document, its final score, payload, and its lineage from the payload."""

    document_id: str
    collection_id: str
    score: float
    payload: dict[str, JsonValue]
    root_object_id: str | None = None
    lineage_path: JsonValue = None
    leg_scores: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def of(cls, candidate: Candidate) -> RetrievedDocument:
        root = candidate.payload.get("root_object_id")
        return cls(
            document_id=candidate.document_id,
            collection_id=candidate.collection_id,
            score=candidate.score,
            payload=dict(candidate.payload),
            root_object_id=root if isinstance(root, str) else None,
            lineage_path=candidate.payload.get("lineage_path"),
            leg_scores=dict(candidate.legs),
        )


class StageReport(_Frozen):
    """How one stage ran: counts in and out, time, whether its result came from the cache."""

    stage_name: str
    stage_id: str
    stage_type: StageType
    input_count: int
    output_count: int
    duration_ms: float
    cache_hit: bool = False
    pushed_down: bool = False


class CacheReport(_Frozen):
    """What was served from caches: the whole execution, stage results (by stage name), query
    embeddings (by feature URI: true when the inference cache already held it)."""

    execution_hit: bool = False
    stage_hits: dict[str, bool] = Field(default_factory=dict)
    query_embedding_hits: dict[str, bool] = Field(default_factory=dict)
    enabled: bool = True


class ExecutionResult(_Frozen):
    retriever_id: str
    documents: tuple[RetrievedDocument, ...]
    stages: tuple[StageReport, ...]
    feature_uris: tuple[str, ...]
    cache: CacheReport
    duration_ms: float
    signatures: dict[str, str] = Field(default_factory=dict)
