"""Events of the extractor service: the documents it wrote and the vector views they live in.

The extractor's store records *which* documents were written to which vector view and at which
global position (that position is the ``born``/``died`` the vector store keeps); the vectors
themselves live only in the vector store. Other services (retrieval) learn from these events
which view of a collection is active, so a re-embedding switches over in one event.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VectorSpace(_Model):
    """Where a collection's vectors live: one space per lineage root, feature URI and shape."""

    lineage_root: str
    feature_uri: str
    kind: Literal["dense", "sparse"]
    dimension: int = Field(ge=1)
    distance: Literal["cosine", "dot"] | None = None
    idf: bool = False


class DocumentRef(_Model):
    """A written document, without its vector or text (those are in the vector store)."""

    document_id: str
    root_object_id: str
    source_collection_id: str | None = None
    source_document_id: str | None = None
    lineage_path: list[str]
    chunk_index: int = Field(ge=0)
    truncated: bool = False


class DocumentFailure(_Model):
    """An input (object, or upstream document for tier N) that produced no document."""

    input_id: str = Field(description="the object id (tier 1) or source document id (tier N)")
    root_object_id: str
    error: str


class ExtractorNamespaceRegistered(Event):
    """The extractor learnt of a namespace clone: which lineage its vector spaces belong to."""

    type_name: ClassVar[str] = "extractor.namespace_registered"

    namespace_id: str
    lineage_root: str
    parent_namespace_id: str | None = None
    at_position: int | None = Field(default=None, description="the catalog's fork position")
    upto: int | None = Field(default=None, description="the extractor's position it maps to")


class ExtractorCollectionRegistered(Event):
    """A collection the extractor serves, with its vector space and first view (``owner``)."""

    type_name: ClassVar[str] = "extractor.collection_registered"

    namespace_id: str
    collection_id: str
    collection_name: str = ""
    feature_extractor: dict[str, Any]
    feature_uri: str
    source: dict[str, Any]
    space: VectorSpace
    owner: str = Field(description="the vector view owner of the active generation")
    forked_from: str | None = Field(default=None, description="the parent view owner, if forked")
    forked_at: int | None = None
    status: Literal["READY", "NEEDS_TRIGGER"] = "READY"
    source_position: int = Field(default=0, description="catalog position of the cause")


class ExtractorCollectionDropped(Event):
    """The collection was deleted: it leaves the read model; its points stay for forks."""

    type_name: ClassVar[str] = "extractor.collection_dropped"

    namespace_id: str
    collection_id: str


class DocumentsWritten(Event):
    """Documents written to one vector view at this event's global position."""

    type_name: ClassVar[str] = "extractor.documents_written"

    namespace_id: str
    collection_id: str
    owner: str
    batch_id: str | None = None
    documents: list[DocumentRef] = Field(default_factory=list)
    failures: list[DocumentFailure] = Field(default_factory=list)
    model_calls: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)
    cache_misses: int = Field(default=0, ge=0)


class DocumentsDeleted(Event):
    """Documents deleted from one vector view at this event's global position."""

    type_name: ClassVar[str] = "extractor.documents_deleted"

    namespace_id: str
    collection_id: str
    owner: str
    document_ids: list[str]
    root_object_id: str | None = None


class BatchStarted(Event):
    """A batch began writing into generation ``owner``: a trigger's full re-processing into a
    new generation, or the back-fill of a new collection's existing source into its first."""

    type_name: ClassVar[str] = "extractor.batch_started"

    namespace_id: str
    collection_id: str
    batch_id: str
    task_id: str | None = None
    owner: str
    kind: Literal["trigger", "ingest", "backfill"] = "trigger"
    total: int | None = None


class BatchFinished(Event):
    """A trigger batch ended; its counts are the task's result."""

    type_name: ClassVar[str] = "extractor.batch_finished"

    namespace_id: str
    collection_id: str
    batch_id: str
    status: str
    result: dict[str, Any] = Field(default_factory=dict)


class GenerationActivated(Event):
    """The collection now serves from ``owner``: the switch after a trigger, in one event."""

    type_name: ClassVar[str] = "extractor.generation_activated"

    namespace_id: str
    collection_id: str
    owner: str
    previous_owner: str
    batch_id: str
    space: VectorSpace


class DocumentsEnriched(Event):
    """Payload fields set on documents of one vector view at this event's global position
    (taxonomy labels, cluster ids): each is a new version of its document, its vector
    unchanged. In a fork the new versions are the fork's own (the parent's are masked), so an
    enrichment never shows in the parent. ``fields`` per document id; ``None`` removes a field."""

    type_name: ClassVar[str] = "extractor.documents_enriched"

    namespace_id: str
    collection_id: str
    owner: str
    source: str = Field(description="what enriched them, e.g. a taxonomy or cluster id")
    documents: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ViewMaterialised(Event):
    """A fork's inherited, still visible documents were copied into a generation of its own
    (``<owner>~<this event's position>``): the vector store drops the view's masks and inherited
    segments, and the document read model copies the same rows, so both read the same."""

    type_name: ClassVar[str] = "extractor.view_materialised"

    namespace_id: str
    collection_id: str
    owner: str
    segments: list[tuple[str, int | None]] = Field(
        description="the view's segments (owner, upto) before: what the copy reads"
    )
    task_id: str | None = None
