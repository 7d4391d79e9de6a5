"""Evaluation service commands and events: datasets (queries with graded relevance judgements),
evaluations of a retriever on a dataset, recorded search interactions and benchmarks that replay
them against a baseline and candidate retrievers. Stored in the evaluation service's own event
store, one stream per namespace (``evaluation-<namespace_id>``), published on
``offshoot.events``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from contracts.base import Command, Event

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_K = 1000

InteractionType = Literal[
    "view", "click", "long_click", "skip", "add_to_cart", "purchase", "positive_feedback",
    "negative_feedback",
]  # fmt: skip

# The relevance grade an interaction gives its document when a session is replayed: the
# strongest signal of the session wins (views and skips are not judgements of relevance).
INTERACTION_GRADES: dict[str, int] = {
    "view": 0, "skip": 0, "negative_feedback": 0, "click": 1, "add_to_cart": 2,
    "long_click": 2, "positive_feedback": 2, "purchase": 3,
}  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetQuery(_Model):
    """One query with its judgements: ``relevant_documents[i]`` has grade ``relevance_scores[i]``
    (default 1 each). Grades ≥ 1 count as relevant; the grade is NDCG's gain."""

    query_id: str = Field(min_length=1, max_length=200)
    query_input: str | dict[str, JsonValue] = Field(
        description="the query text, or the retriever's whole inputs object"
    )
    relevant_documents: list[str] = Field(default_factory=list, max_length=10_000)
    relevance_scores: list[int] | None = Field(default=None, description="graded relevance")

    @model_validator(mode="after")
    def _aligned(self) -> DatasetQuery:
        if self.relevance_scores is not None and len(self.relevance_scores) != len(
            self.relevant_documents
        ):
            raise ValueError("relevance_scores must have one grade per relevant document")
        if any(score < 0 for score in self.relevance_scores or ()):
            raise ValueError("relevance_scores must be ≥ 0")
        return self

    def qrels(self) -> dict[str, int]:
        scores = self.relevance_scores or [1] * len(self.relevant_documents)
        return dict(zip(self.relevant_documents, scores, strict=True))


class CreateDataset(Command):
    """``POST /v1/evaluations/datasets``. ``document_id_field`` names the document payload
    field holding the ids the judgements use (e.g. the BEIR ``_id`` kept on each object)."""

    type_name: ClassVar[str] = "evaluation.dataset.create"

    dataset_name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    queries: list[DatasetQuery] = Field(max_length=100_000)
    document_id_field: str = Field(default="_id", min_length=1, max_length=200)


class DatasetCreated(Event):
    type_name: ClassVar[str] = "evaluation.dataset_created"

    namespace_id: str
    dataset_id: str
    dataset_name: str
    description: str = ""
    document_id_field: str
    queries: list[DatasetQuery]
    created_by: str | None = None
    created_at: str


class DatasetDeleted(Event):
    type_name: ClassVar[str] = "evaluation.dataset_deleted"

    namespace_id: str
    dataset_id: str


class RunEvaluation(Command):
    """``POST /v1/retrievers/evaluations``: run every query of the dataset through the retriever
    (or the alias's current retriever) and score the rankings at each k."""

    type_name: ClassVar[str] = "evaluation.run"

    retriever_id: str = Field(min_length=1, description="a retriever id or name, or an alias")
    dataset_id: str = Field(min_length=1, description="a dataset id or name")
    k_values: list[int] = Field(default_factory=lambda: [1, 5, 10, 20, 100], max_length=20)
    filter_identical_ids: bool = Field(
        default=False, description="drop a retrieved document whose id equals the query id (BEIR)"
    )
    query_input_key: str = Field(default="query", min_length=1, max_length=200)


class EvaluationStarted(Event):
    type_name: ClassVar[str] = "evaluation.started"

    namespace_id: str
    evaluation_id: str
    task_id: str
    retriever_id: str
    alias_name: str | None = None
    dataset_id: str
    k_values: list[int]
    filter_identical_ids: bool
    query_input_key: str
    created_by: str | None = None
    created_at: str


class EvaluationCompleted(Event):
    """The scores: ``overall_metrics`` (over each whole ranking), ``metrics_by_k``, per query,
    execution latency, and dataset documents no result ever carried (counted as misses)."""

    type_name: ClassVar[str] = "evaluation.completed"

    namespace_id: str
    evaluation_id: str
    overall_metrics: dict[str, float]
    metrics_by_k: dict[str, dict[str, float]]
    per_query: list[dict[str, Any]]
    latency_ms: dict[str, float]
    query_count: int
    missing_documents: list[str] = Field(default_factory=list)
    completed_at: str


class EvaluationFailed(Event):
    type_name: ClassVar[str] = "evaluation.failed"

    namespace_id: str
    evaluation_id: str
    error: str
    failed_at: str


class Interaction(_Model):
    """One search interaction. ``document_id`` is an Offshoot document id unless
    ``document_id_field`` names the payload field it comes from (simulated sessions use the
    dataset's)."""

    interaction_type: InteractionType
    session_id: str = Field(min_length=1, max_length=200)
    query: str | dict[str, JsonValue] | None = None
    document_id: str | None = None
    document_id_field: str | None = None
    position: int | None = Field(default=None, ge=0)
    execution_id: str | None = None
    retriever_id: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    occurred_at: str | None = None


class RecordInteractions(Command):
    """``POST /v1/interactions``: one or many interactions."""

    type_name: ClassVar[str] = "evaluation.interactions.record"

    interactions: list[Interaction] = Field(min_length=1, max_length=100_000)


class InteractionsRecorded(Event):
    type_name: ClassVar[str] = "evaluation.interactions_recorded"

    namespace_id: str
    interaction_ids: list[str]
    interactions: list[Interaction]
    recorded_at: str


class CreateBenchmark(Command):
    """``POST /v1/retrievers/benchmarks``: replay the latest ``session_count`` recorded sessions
    against the baseline and each candidate."""

    type_name: ClassVar[str] = "evaluation.benchmark.create"

    benchmark_name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    baseline_retriever_id: str = Field(min_length=1)
    candidate_retriever_ids: list[str] = Field(min_length=1, max_length=16)
    session_count: int = Field(default=100, ge=1, le=100_000)
    k: int = Field(default=10, ge=1, le=MAX_K, description="cutoff of recall and NDCG")
    query_input_key: str = Field(default="query", min_length=1, max_length=200)
    seed: int = Field(default=0, description="seeds the permutation test and the bootstrap")


class BenchmarkCreated(Event):
    type_name: ClassVar[str] = "evaluation.benchmark_created"

    namespace_id: str
    benchmark_id: str
    benchmark_name: str
    description: str = ""
    baseline_retriever_id: str
    candidate_retriever_ids: list[str]
    session_count: int
    k: int
    query_input_key: str
    seed: int
    created_by: str | None = None
    created_at: str


class BenchmarkStarted(Event):
    type_name: ClassVar[str] = "evaluation.benchmark_started"

    namespace_id: str
    benchmark_id: str
    task_id: str
    started_at: str


class BenchmarkCompleted(Event):
    type_name: ClassVar[str] = "evaluation.benchmark_completed"

    namespace_id: str
    benchmark_id: str
    task_id: str
    results: dict[str, Any]
    completed_at: str


class BenchmarkFailed(Event):
    type_name: ClassVar[str] = "evaluation.benchmark_failed"

    namespace_id: str
    benchmark_id: str
    task_id: str
    error: str
    failed_at: str


class EvaluationNamespaceForked(Event):
    """The clone got the parent's datasets (ids mapped by ``derive``); interactions, evaluations
    and benchmarks stay with the parent (they record the parent's traffic and retrievers)."""

    type_name: ClassVar[str] = "evaluation.namespace_forked"

    namespace_id: str
    parent_namespace_id: str
    at_position: int
    mapping: dict[str, str]
