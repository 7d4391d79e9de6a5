"""The vector-store port: forkable vector spaces read and written through views.

Adapters: ``EdgeVectorStore`` (Qdrant Edge, in-process, the embedded default) and
``QdrantVectorStore`` (a Qdrant server through ``qdrant-client``). Both are thin: the algorithm
(views, masks, materialisation, vacuum) lives once in ``libs/vectors/core.py`` over a small
backend protocol, and both run the one shared suite in ``tests/vectors/``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    JsonValue,
    NonNegativeInt,
    model_validator,
)

from libs.vectors.filters import Filter

FeatureUri = Annotated[str, Field(pattern=r"^offshoot://[^@/\s]+@[^/\s]+/\S+$", max_length=512)]
OwnerId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
DocumentId = Annotated[str, Field(min_length=1, max_length=512)]
Payload = dict[str, JsonValue]
IndexKind = Literal["keyword", "integer", "float", "bool"]

# Payload keys the store writes on every point; user payloads may not use them.
SYSTEM_FIELDS = ("owner", "born", "died", "document_id")
REGISTRY_FIELD = "_registry"
RESERVED_FIELDS = frozenset((*SYSTEM_FIELDS, REGISTRY_FIELD))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpaceSpec(_Frozen):
    """One physical collection per (lineage root, feature URI, kind, dimension, distance).

    ``dimension`` is the vector length for dense spaces and the vocabulary size (every index must
    be below it) for sparse ones. Sparse spaces score by dot product, with the IDF modifier by
    default (BM25); dense spaces use ``cosine`` (default) or ``dot``.
    """

    lineage_root: OwnerId
    feature_uri: FeatureUri
    dimension: int = Field(ge=1, le=1 << 31)
    kind: Literal["dense", "sparse"] = "dense"
    distance: Literal["cosine", "dot"] | None = None
    idf: bool = False

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_kind(cls, data: Any) -> Any:
        """Defaults depend on the kind, so a sparse spec need not unset a dense-only default."""
        if isinstance(data, dict):
            sparse = data.get("kind") == "sparse"
            data = dict(data)
            data.setdefault("distance", None if sparse else "cosine")
            data.setdefault("idf", sparse)
        return data

    @model_validator(mode="after")
    def _coherent(self) -> SpaceSpec:
        if self.kind == "dense" and (self.distance is None or self.idf):
            raise ValueError("a dense space needs a distance (cosine or dot) and no idf")
        if self.kind == "sparse" and self.distance is not None:
            raise ValueError("a sparse space scores by dot product: leave distance unset")
        return self

    @property
    def space_id(self) -> str:
        """The physical collection's name: readable root prefix + a hash of the whole spec."""
        canonical = "\x1f".join(
            (
                self.lineage_root,
                self.feature_uri,
                self.kind,
                str(self.dimension),
                str(self.distance),
                str(self.idf),
            )
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:20]
        root = re.sub(r"[^A-Za-z0-9_-]", "_", self.lineage_root)[:40]
        return f"vs_{root}_{digest}"

    def describe(self) -> str:
        """For error messages: what a vector must look like to enter this space."""
        if self.kind == "dense":
            return f"{self.feature_uri} ({self.dimension}-d dense, {self.distance})"
        return f"{self.feature_uri} (sparse, vocabulary {self.dimension})"


class DenseVector(_Frozen):
    """A dense vector tagged with the feature that produced it (checked against the space)."""

    kind: Literal["dense"] = "dense"
    feature_uri: str
    values: tuple[FiniteFloat, ...] = Field(min_length=1)


class SparseVector(_Frozen):
    """A sparse vector (e.g. BM25 term weights) tagged with the feature that produced it."""

    kind: Literal["sparse"] = "sparse"
    feature_uri: str
    indices: tuple[NonNegativeInt, ...]
    values: tuple[FiniteFloat, ...]

    @model_validator(mode="after")
    def _paired(self) -> SparseVector:
        if len(self.indices) != len(self.values):
            raise ValueError("a sparse vector needs as many values as indices")
        if len(set(self.indices)) != len(self.indices):
            raise ValueError("a sparse vector's indices must be unique")
        return self


Vector = Annotated[DenseVector | SparseVector, Field(discriminator="kind")]


class PointIn(_Frozen):
    """A document's vector and payload as written. The store adds the system fields."""

    document_id: DocumentId
    vector: Vector
    payload: Payload = Field(default_factory=dict)


class PointRecord(_Frozen):
    """A point visible in a view. ``owner``/``born`` say which stream wrote it and when."""

    point_id: str
    document_id: str
    owner: str
    born: int
    payload: Payload
    vector: DenseVector | SparseVector | None = None


class ScoredPoint(PointRecord):
    score: float


class Page(_Frozen):
    """A page of a scroll; pass ``next_offset`` back to continue, ``None`` means the end."""

    points: tuple[PointRecord, ...]
    next_offset: str | None


class Segment(_Frozen):
    """Points of ``owner`` as of ``upto`` (born <= upto < died), or its live points (``None``)."""

    owner: OwnerId
    upto: NonNegativeInt | None = None

    @property
    def live(self) -> bool:
        return self.upto is None


class Mask(_Frozen):
    """An inherited point the view deleted or replaced at ``position``. The position lets a fork
    taken at an earlier position (a delayed fork) keep seeing the point."""

    point_id: str
    position: NonNegativeInt


class View(_Frozen):
    """What one owner (a collection/namespace stream) sees of a vector space.

    A snapshot: reads use it as given; writes resolve the registered view by (space, owner) and
    return the new one. Live segments belong to the view: its own owner and the generations
    (``owner~position``) that materialisations wrote. Inherited segments have an ``upto``.
    """

    space: SpaceSpec
    owner: OwnerId
    segments: tuple[Segment, ...] = Field(min_length=1)
    masked: tuple[Mask, ...] = ()
    parent: str | None = None
    forked_at: NonNegativeInt | None = None
    materialised_at: NonNegativeInt | None = None

    @model_validator(mode="after")
    def _well_formed(self) -> View:
        owners = [s.owner for s in self.segments]
        if len(set(owners)) != len(owners):
            raise ValueError(f"a view lists each owner once, got {owners}")
        own = {self.owner} | {o for o in owners if o.startswith(f"{self.owner}~")}
        live = {s.owner for s in self.segments if s.live}
        if self.owner not in live or not live <= own:
            raise ValueError(f"the live segments of view {self.owner!r} must be its own: {owners}")
        return self

    @property
    def live_owners(self) -> frozenset[str]:
        """Owners whose points this view kills directly (soft delete) rather than masks."""
        return frozenset(s.owner for s in self.segments if s.live)


class VectorStore(Protocol):
    """Forkable vector spaces. Every method is keyword-only; positions are event-store global
    positions (``born``/``died`` of points, ``upto`` of segments).

    Errors: ``InvalidInputError`` (wrong feature URI, dimension, reserved payload key, bad
    position), ``NotFoundError`` (unknown space or unregistered view), ``ConflictError`` (an
    owner id reused for a different view), ``InfrastructureError`` (the backend failed).
    """

    async def ensure_space(
        self, *, spec: SpaceSpec, indexes: Mapping[str, IndexKind] | None = None
    ) -> None:
        """Create the space's collection with its system payload indexes when missing, and index
        the user payload fields named in ``indexes`` (filters on them stay fast). Idempotent."""
        ...

    async def drop_space(self, *, spec: SpaceSpec) -> None:
        """Remove the space and every point and view in it (the lineage root was deleted)."""
        ...

    async def create_view(self, *, space: SpaceSpec, owner: str) -> View:
        """Register a root view (one live segment); returns the registered one if it exists."""
        ...

    async def get_view(self, *, space: SpaceSpec, owner: str) -> View:
        """The registered view of ``owner`` (raises ``NotFoundError``)."""
        ...

    async def fork_view(self, *, parent: View, owner: str, at_position: int) -> View:
        """Register ``owner`` as a fork of ``parent`` as of ``at_position``. O(1) in points."""
        ...

    async def drop_view(self, *, view: View) -> None:
        """Unregister the view; its points stay while forks reference them (see ``vacuum``)."""
        ...

    async def upsert(self, *, view: View, points: Sequence[PointIn], position: int) -> View:
        """Write points born at ``position``, replacing visible versions of their documents."""
        ...

    async def delete(self, *, view: View, document_ids: Sequence[str], position: int) -> View:
        """Delete documents in the view: own points die, inherited ones are masked."""
        ...

    async def get(
        self, *, view: View, document_ids: Sequence[str], with_vectors: bool = False
    ) -> list[PointRecord]:
        """The visible points of these documents (unknown ids are skipped)."""
        ...

    async def scroll(
        self,
        *,
        view: View,
        filter: Filter | None = None,
        limit: int = 100,
        offset: str | None = None,
        with_vectors: bool = False,
    ) -> Page:
        """Visible points in point-id order, ``limit`` at a time, from the ``offset`` cursor."""
        ...

    async def count(self, *, view: View, filter: Filter | None = None) -> int:
        """How many points are visible (and match ``filter``)."""
        ...

    async def search(
        self,
        *,
        view: View,
        query: DenseVector | SparseVector,
        top_k: int = 10,
        filter: Filter | None = None,
        with_vectors: bool = False,
    ) -> list[ScoredPoint]:
        """The ``top_k`` visible points nearest to ``query`` (sparse IDF over the view)."""
        ...

    def needs_materialise(self, view: View) -> bool:
        """Whether the view's masks grew past the store's threshold."""
        ...

    async def materialise(self, *, view: View, position: int) -> View:
        """Copy the view's inherited visible points into a generation of its own; drop masks."""
        ...

    async def vacuum(self, *, space: SpaceSpec) -> int:
        """Physically remove points no registered view can see; returns how many."""
        ...

    async def close(self) -> None: ...
