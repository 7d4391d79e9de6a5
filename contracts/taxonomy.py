"""Taxonomy service commands and events: taxonomies (retrieval-backed enrichment recipes) and
clusters (vector groupings). Stored in the taxonomy service's own event store, one stream per
namespace (``taxonomy-<namespace_id>``), and published on ``offshoot.events``.

A taxonomy is immutable in its core config (retrievers, input mappings, enrichment fields,
hierarchy): PATCH changes only name and description; a change of behaviour is a clone. A flat
taxonomy is stored as a hierarchy of one node, so applying either walks the same code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from contracts.base import Command, Event

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
FIELD = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
"""A payload field the service writes: a plain identifier (no dots, so filters read it as is)."""
PATH = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputMapping(_Model):
    """Where one retriever input comes from, per document: a payload field (``path``), the
    document's stored vector (``feature_uri``, which must be the collection's), or the label the
    parent node gave (hierarchies only)."""

    input_key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    source: Literal["field", "vector", "parent_label"] = "field"
    path: str | None = Field(default=None, pattern=PATH)
    feature_uri: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> InputMapping:
        if self.source == "field" and self.path is None:
            raise ValueError(f"input {self.input_key!r}: source 'field' needs a 'path'")
        if self.source == "vector" and self.feature_uri is None:
            raise ValueError(f"input {self.input_key!r}: source 'vector' needs a 'feature_uri'")
        return self


class TaxonomyNode(_Model):
    """One level of a hierarchy: its retriever searches a reference collection of labels.

    ``label_field`` is the payload field of a reference document holding its label;
    ``parent_field`` (children only) the field naming the parent's label it belongs under: a
    child's label is taken only from reference documents under the label its parent chose, so
    a child label never appears without its parent. ``enrichment_fields`` are copied from the
    matched reference document; children inherit their ancestors' fields."""

    node_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    parent_node_id: str | None = None
    retriever_id: str = Field(min_length=1, description="a retriever id or name")
    input_mappings: list[InputMapping] = Field(min_length=1, max_length=16)
    enrichment_fields: list[str] = Field(default_factory=list, max_length=32)
    label_field: str = Field(default="label", pattern=PATH)
    parent_field: str = Field(default="parent", pattern=PATH)


class CreateTaxonomy(Command):
    """``POST /v1/taxonomies``. ``flat``: ``retriever_id`` + ``input_mappings`` (+
    ``enrichment_fields``, ``label_field``); ``hierarchical``: ``nodes``, one root, no cycles.

    Applied, it writes ``<output_field>`` (the label), ``<output_field>_score``,
    ``<output_field>_path`` (the chain of labels) and ``<output_field>_<field>`` per enrichment
    field onto each document."""

    type_name: ClassVar[str] = "taxonomy.create"

    taxonomy_name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    taxonomy_type: Literal["flat", "hierarchical"] = "flat"
    retriever_id: str | None = None
    input_mappings: list[InputMapping] | None = None
    enrichment_fields: list[str] = Field(default_factory=list, max_length=32)
    label_field: str = Field(default="label", pattern=PATH)
    nodes: list[TaxonomyNode] | None = Field(default=None, max_length=64)
    output: Literal["full_chain", "best_match"] = "full_chain"
    output_field: str = Field(default="taxonomy", pattern=FIELD)
    min_score: float | None = Field(default=None, description="labels scoring below are dropped")
    top_k: int = Field(default=50, ge=1, le=1000, description="reference documents read per node")


class UpdateTaxonomy(Command):
    """``PATCH /v1/taxonomies/{id}``: name and description only (the core config is immutable:
    clone instead)."""

    type_name: ClassVar[str] = "taxonomy.update"

    taxonomy_name: str | None = Field(default=None, pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    retriever_id: str | None = Field(default=None, description="refused (409): clone instead")
    input_mappings: list[InputMapping] | None = Field(
        default=None, description="refused (409): clone instead"
    )
    nodes: list[TaxonomyNode] | None = Field(default=None, description="refused (409)")


class CloneTaxonomy(Command):
    """``POST /v1/taxonomies/{id}/clone``: a new taxonomy from this one with overrides (e.g. a
    different backing ``retriever_id``); config only, nothing is applied."""

    type_name: ClassVar[str] = "taxonomy.clone"

    taxonomy_name: str = Field(pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    retriever_id: str | None = Field(default=None, description="flat: the new retriever")
    input_mappings: list[InputMapping] | None = None
    enrichment_fields: list[str] | None = None
    nodes: list[TaxonomyNode] | None = Field(default=None, max_length=64)
    output: Literal["full_chain", "best_match"] | None = None
    min_score: float | None = None


class ApplyTaxonomy(Command):
    """``POST /v1/taxonomies/{id}/apply``: label the collection's documents (a task).
    ``filters``: a vector-store condition tree restricting the documents; ``merge``: ``replace``
    overwrites earlier labels, ``append`` keeps them (``<output_field>`` becomes a list)."""

    type_name: ClassVar[str] = "taxonomy.apply"

    collection_id: str = Field(min_length=1, description="a collection id or name")
    filters: dict[str, Any] | None = None
    merge: Literal["replace", "append"] = "replace"


class CompareTaxonomies(Command):
    """``POST /v1/taxonomies/compare``: label the same ``sample`` documents with both, without
    writing. ``ground_truth``: a payload field name, or ``{document_id: label}``."""

    type_name: ClassVar[str] = "taxonomy.compare"

    baseline: str = Field(min_length=1)
    candidate: str = Field(min_length=1)
    collection_id: str = Field(min_length=1)
    sample: int = Field(default=100, ge=1, le=10_000)
    ground_truth: str | dict[str, str] | None = None


class CreateCluster(Command):
    """``POST /v1/clusters``: a clustering of one collection's vectors of ``feature_uri``.
    ``params`` by algorithm: kmeans ``{n_clusters, random_state, n_init}``, hdbscan
    ``{min_cluster_size, min_samples}``, agglomerative ``{n_clusters, linkage}``."""

    type_name: ClassVar[str] = "cluster.create"

    cluster_name: str = Field(default="clusters", pattern=NAME)
    collection_id: str = Field(min_length=1)
    feature_uri: str = Field(min_length=1)
    algorithm: Literal["kmeans", "hdbscan", "agglomerative"] = "kmeans"
    params: dict[str, JsonValue] = Field(default_factory=dict)
    write_back: bool = Field(default=False, description="write each document's cluster onto it")
    output_field: str = Field(default="cluster_id", pattern=FIELD)
    label_field: str = Field(default="title", pattern=PATH)


class TaxonomyCreated(Event):
    type_name: ClassVar[str] = "taxonomy.created"

    namespace_id: str
    taxonomy_id: str
    taxonomy_name: str
    description: str = ""
    taxonomy_type: Literal["flat", "hierarchical"]
    nodes: list[TaxonomyNode] = Field(min_length=1)
    output: Literal["full_chain", "best_match"] = "full_chain"
    output_field: str
    min_score: float | None = None
    top_k: int = 50
    cloned_from: str | None = None
    created_by: str | None = None
    created_at: str


class TaxonomyUpdated(Event):
    type_name: ClassVar[str] = "taxonomy.updated"

    namespace_id: str
    taxonomy_id: str
    taxonomy_name: str | None = None
    description: str | None = None
    updated_at: str


class TaxonomyDeleted(Event):
    type_name: ClassVar[str] = "taxonomy.deleted"

    namespace_id: str
    taxonomy_id: str


class TaxonomyApplied(Event):
    """An apply finished: how many documents were read, relabelled and failed."""

    type_name: ClassVar[str] = "taxonomy.applied"

    namespace_id: str
    taxonomy_id: str
    collection_id: str
    task_id: str
    merge: Literal["replace", "append"] = "replace"
    documents_seen: int = Field(ge=0)
    documents_changed: int = Field(ge=0)
    failed: int = Field(ge=0)
    failures: list[dict[str, str]] = Field(default_factory=list, description="the first 100")


class ClusterCreated(Event):
    type_name: ClassVar[str] = "cluster.created"

    namespace_id: str
    cluster_id: str
    cluster_name: str
    collection_id: str
    feature_uri: str
    algorithm: Literal["kmeans", "hdbscan", "agglomerative"]
    params: dict[str, JsonValue]
    write_back: bool = False
    output_field: str = "cluster_id"
    label_field: str = "title"
    created_by: str | None = None
    created_at: str


class ClusterDeleted(Event):
    type_name: ClassVar[str] = "cluster.deleted"

    namespace_id: str
    cluster_id: str


class ClusterExecutionCompleted(Event):
    """A clustering run finished: per-cluster sizes, centroids and labels, per-document
    assignments, and the quality metrics (``None`` where undefined, e.g. one cluster)."""

    type_name: ClassVar[str] = "cluster.execution.completed"

    namespace_id: str
    cluster_id: str
    task_id: str
    documents: int = Field(ge=0)
    clusters: list[dict[str, JsonValue]]
    assignments: dict[str, int]
    metrics: dict[str, float | None]
    written_back: int = 0


class ClusterExecutionFailed(Event):
    type_name: ClassVar[str] = "cluster.execution.failed"

    namespace_id: str
    cluster_id: str
    task_id: str
    error: str


class TaxonomyNamespaceForked(Event):
    """The taxonomy service copied a namespace's taxonomies into a clone (config only;
    ``mapping``: old id → new id)."""

    type_name: ClassVar[str] = "taxonomy.namespace_forked"

    namespace_id: str
    parent_namespace_id: str
    mapping: dict[str, str] = Field(default_factory=dict)
