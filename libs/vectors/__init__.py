"""Forkable vector storage: the port (``VectorStore``), its two adapters, views and filters.

``open_vector_store(url)`` picks the adapter: ``edge:///path/to/dir`` (``EdgeVectorStore``, the
embedded default) or ``http(s)://host:6333`` (``QdrantVectorStore``; ``api_key`` separately).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from libs.errors import InvalidInputError
from libs.vectors.base import (
    DenseVector,
    Mask,
    Page,
    PointIn,
    PointRecord,
    ScoredPoint,
    Segment,
    SpaceSpec,
    SparseVector,
    Vector,
    VectorStore,
    View,
)
from libs.vectors.core import ForkableVectorStore
from libs.vectors.edge import EdgeVectorStore, to_edge_filter
from libs.vectors.filters import (
    And,
    Eq,
    Exists,
    Filter,
    Gt,
    Gte,
    HasId,
    In,
    IsNull,
    Lt,
    Lte,
    Ne,
    Nin,
    Not,
    Or,
    parse_filter,
)
from libs.vectors.qdrant import QdrantVectorStore, to_qdrant_filter
from libs.vectors.views import needs_materialise, visibility

__all__ = [
    "And",
    "DenseVector",
    "EdgeVectorStore",
    "Eq",
    "Exists",
    "Filter",
    "ForkableVectorStore",
    "Gt",
    "Gte",
    "HasId",
    "In",
    "IsNull",
    "Lt",
    "Lte",
    "Mask",
    "Ne",
    "Nin",
    "Not",
    "Or",
    "Page",
    "PointIn",
    "PointRecord",
    "QdrantVectorStore",
    "ScoredPoint",
    "Segment",
    "SpaceSpec",
    "SparseVector",
    "Vector",
    "VectorStore",
    "View",
    "needs_materialise",
    "open_vector_store",
    "parse_filter",
    "to_edge_filter",
    "to_qdrant_filter",
    "visibility",
]


def open_vector_store(
    url: str, *, api_key: str | None = None
) -> EdgeVectorStore | QdrantVectorStore:
    """The adapter named by ``url``: ``edge:///data/dir`` or ``http(s)://host:port``."""
    parts = urlsplit(url)
    if parts.scheme == "edge":
        if parts.netloc or not parts.path:
            raise InvalidInputError(
                f"edge:// takes an absolute path, e.g. edge:///var/vectors: {url!r}"
            )
        return EdgeVectorStore(parts.path)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise InvalidInputError(f"a Qdrant URL needs a host: {url!r}")
        return QdrantVectorStore(url, api_key=api_key)
    raise InvalidInputError(f"unknown vector store URL {url!r}: use edge:///path or http(s)://host")
