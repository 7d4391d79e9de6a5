"""What an adapter must provide: a handful of collection primitives over neutral filters.

The view logic (``core.py``) is written once against this protocol; an adapter is this protocol
plus one function compiling ``libs.vectors.filters`` to its driver's filter type. Adapters
translate every driver error into ``InfrastructureError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from libs.vectors.base import IndexKind, SpaceSpec
from libs.vectors.filters import Filter

# Vector names inside a collection: one dense or one sparse vector per space.
DENSE = "dense"
SPARSE = "sparse"

# What adapters index: the system fields every view filter uses, plus the registry marker.
KEYWORD_INDEXES = ("owner", "document_id", "_registry")
INTEGER_INDEXES = ("born", "died")

# A dense vector, a sparse one as (indices, values), or none (registry records).
RawVector = list[float] | tuple[list[int], list[float]] | None


@dataclass(frozen=True, slots=True)
class RawPoint:
    id: str
    vector: RawVector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawRecord:
    id: str
    payload: dict[str, Any]
    vector: RawVector = None
    score: float | None = None


class Backend(Protocol):
    """Collections named by ``SpaceSpec.space_id``; ids are UUID strings."""

    async def create_collection(self, spec: SpaceSpec) -> None:
        """Create the collection with its vector config and payload indexes, if missing."""
        ...

    async def create_indexes(self, name: str, indexes: Mapping[str, IndexKind]) -> None:
        """Index user payload fields (creating an existing index again is harmless)."""
        ...

    async def collection_exists(self, name: str) -> bool: ...

    async def drop_collection(self, name: str) -> None: ...

    async def write(self, name: str, points: Sequence[RawPoint], *, overwrite: bool) -> None:
        """Store points; with ``overwrite=False`` ids that exist are left untouched."""
        ...

    async def set_payload(self, name: str, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge ``payload`` into the given points."""
        ...

    async def delete_where(self, name: str, where: Filter) -> None: ...

    async def retrieve(self, name: str, ids: Sequence[str]) -> list[RawRecord]:
        """Points by id, payload only."""
        ...

    async def scroll(
        self, name: str, where: Filter, *, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[RawRecord], str | None]:
        """Matching points in id order from ``offset``, and the id to continue from."""
        ...

    async def count(self, name: str, where: Filter) -> int: ...

    async def search(
        self,
        spec: SpaceSpec,
        vector: RawVector,
        where: Filter,
        *,
        top_k: int,
        with_vectors: bool,
        idf_corpus: Filter | None,
    ) -> list[RawRecord]:
        """Nearest points matching ``where``; sparse IDF statistics over ``idf_corpus``."""
        ...

    async def close(self) -> None: ...
