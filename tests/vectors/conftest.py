"""One shared suite for both vector-store adapters: each test runs on ``edge`` (Qdrant Edge in a
temporary directory) and ``qdrant-local`` (``QdrantVectorStore`` over qdrant-client's local mode,
the same client API a Qdrant server answers). Data stays small: local mode filters in Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from pydantic import JsonValue
from qdrant_client import AsyncQdrantClient

from libs.vectors import (
    DenseVector,
    EdgeVectorStore,
    ForkableVectorStore,
    PointIn,
    PointRecord,
    QdrantVectorStore,
    ScoredPoint,
    SpaceSpec,
    SparseVector,
    View,
)

# Local mode warns once that payload indexes have no effect there; that is expected.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

URI = "offshoot://minilm@v1/text_embedding"
DIM = 8
SPARSE_URI = "offshoot://bm25@v1/terms"

StoreFactory = Callable[[], ForkableVectorStore]


def make_store(adapter: str, data_dir: Path, **options: int) -> ForkableVectorStore:
    if adapter == "edge":
        return EdgeVectorStore(data_dir, optimize_idle_seconds=None, **options)
    return QdrantVectorStore(client=AsyncQdrantClient(":memory:"), **options)


@pytest.fixture(params=["edge", "qdrant-local"])
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def store(adapter: str, tmp_path: Path) -> AsyncIterator[ForkableVectorStore]:
    opened = make_store(adapter, tmp_path / "vectors", mask_threshold=3)
    yield opened
    await opened.close()


@pytest.fixture
def spec() -> SpaceSpec:
    return SpaceSpec(lineage_root="ns_root", feature_uri=URI, dimension=DIM)


@pytest.fixture
async def space(store: ForkableVectorStore, spec: SpaceSpec) -> SpaceSpec:
    await store.ensure_space(spec=spec)
    return spec


def unit(seed: int, dim: int = DIM) -> tuple[float, ...]:
    """A deterministic random unit vector."""
    values = np.random.default_rng(seed).standard_normal(dim)
    return tuple(float(v) for v in values / np.linalg.norm(values))


def dense(seed: int, uri: str = URI, dim: int = DIM) -> DenseVector:
    return DenseVector(feature_uri=uri, values=unit(seed, dim))


def sparse(terms: dict[int, float], uri: str = SPARSE_URI) -> SparseVector:
    return SparseVector(feature_uri=uri, indices=tuple(terms), values=tuple(terms.values()))


def docs(*names: str, seed: int = 0, **payload: JsonValue) -> list[PointIn]:
    """One point per document name; the vector depends on the name (and ``seed``)."""
    return [
        PointIn(
            document_id=name,
            vector=dense(seed + sum(map(ord, name)) * 7919),
            payload={"name": name, **payload},
        )
        for name in names
    ]


def ids(points: Iterable[PointRecord]) -> set[str]:
    return {p.document_id for p in points}


async def visible(store: ForkableVectorStore, view: View) -> dict[str, PointRecord]:
    """Every point the view sees, by document id, scrolled page by page."""
    found: dict[str, PointRecord] = {}
    offset: str | None = None
    while True:
        page = await store.scroll(view=view, limit=7, offset=offset, with_vectors=True)
        for point in page.points:
            assert point.document_id not in found, f"{point.document_id} seen twice"
            found[point.document_id] = point
        offset = page.next_offset
        if offset is None:
            return found


async def everything(
    store: ForkableVectorStore, view: View, query: DenseVector | None = None
) -> list[ScoredPoint]:
    """A search wide enough to return every visible point."""
    return await store.search(view=view, query=query or dense(12345), top_k=1000)
