"""The basic contract on both adapters: spaces, writes, reads, validation, replays, sparse IDF,
vacuum, and error translation."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from libs.errors import InfrastructureError, InvalidInputError, NotFoundError
from libs.vectors import (
    DenseVector,
    EdgeVectorStore,
    ForkableVectorStore,
    Gte,
    PointIn,
    QdrantVectorStore,
    SpaceSpec,
)
from tests.vectors.conftest import (
    DIM,
    SPARSE_URI,
    URI,
    dense,
    docs,
    everything,
    ids,
    sparse,
    visible,
)

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")


async def test_write_read_search_roundtrip(store: ForkableVectorStore, space: SpaceSpec) -> None:
    view = await store.create_view(space=space, owner="col_a")
    assert await store.create_view(space=space, owner="col_a") == view
    points = [
        PointIn(document_id=f"d{i}", vector=dense(i), payload={"rank": i, "tags": ["x"]})
        for i in range(12)
    ]
    view = await store.upsert(view=view, points=points, position=3)

    assert await store.count(view=view) == 12
    assert await store.count(view=view, filter=Gte(field="rank", value=9)) == 3
    got = await store.get(view=view, document_ids=["d4", "nope", "d1"], with_vectors=True)
    assert [p.document_id for p in got] == ["d4", "d1"]
    assert got[0].payload == {"rank": 4, "tags": ["x"]}  # system fields are not payload
    assert got[0].owner == "col_a" and got[0].born == 3
    assert got[0].vector is not None and got[0].vector.feature_uri == URI
    assert got[0].vector.values == pytest.approx(dense(4).values, abs=1e-6)

    hits = await store.search(view=view, query=dense(7), top_k=3, with_vectors=True)
    assert hits[0].document_id == "d7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].vector is not None

    pages, offset = [], None
    while True:
        page = await store.scroll(view=view, limit=5, offset=offset)
        pages.append([p.document_id for p in page.points])
        offset = page.next_offset
        if offset is None:
            break
    assert [len(p) for p in pages] == [5, 5, 2]
    assert {d for p in pages for d in p} == {f"d{i}" for i in range(12)}


async def test_mismatched_vectors_are_refused_and_nothing_is_written(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    view = await store.create_view(space=space, owner="col_a")
    other_model = DenseVector(feature_uri="offshoot://mpnet@v1/text_embedding", values=(1.0,) * DIM)
    too_long = DenseVector(feature_uri=URI, values=(1.0,) * (DIM + 1))
    good = docs("fine")
    with pytest.raises(InvalidInputError, match=r"mpnet@v1/text_embedding.*minilm@v1.*8-d"):
        bad = PointIn(document_id="bad", vector=other_model)
        await store.upsert(view=view, points=[*good, bad], position=1)
    with pytest.raises(InvalidInputError, match=r"has 9 dimensions.*has 8"):
        await store.upsert(
            view=view, points=[*good, PointIn(document_id="x", vector=too_long)], position=1
        )
    with pytest.raises(InvalidInputError, match="reserved"):
        await store.upsert(view=view, points=docs("x", born=3), position=1)
    with pytest.raises(InvalidInputError, match="twice"):
        await store.upsert(view=view, points=[*good, *good], position=1)
    with pytest.raises(InvalidInputError, match="sparse"):
        await store.upsert(
            view=view,
            points=[PointIn(document_id="s", vector=sparse({1: 1.0}, uri=URI))],
            position=1,
        )
    with pytest.raises(InvalidInputError, match="all zeros"):
        await store.upsert(
            view=view,
            points=[
                PointIn(document_id="z", vector=DenseVector(feature_uri=URI, values=(0.0,) * DIM))
            ],
            position=1,
        )
    with pytest.raises(InvalidInputError, match="positions"):
        await store.upsert(view=view, points=good, position=-1)
    assert await store.count(view=view) == 0  # no batch was half-written

    with pytest.raises(InvalidInputError, match=r"query vector of offshoot://mpnet@v1"):
        await store.search(view=view, query=other_model)
    with pytest.raises(InvalidInputError, match=r"query vector .* has 9 dimensions"):
        await store.search(view=view, query=too_long)
    with pytest.raises(InvalidInputError, match="top_k"):
        await store.search(view=view, query=dense(1), top_k=0)


async def test_unknown_spaces_and_spec_rules(store: ForkableVectorStore, spec: SpaceSpec) -> None:
    with pytest.raises(NotFoundError, match="ensure_space"):
        await store.create_view(space=spec, owner="col_a")
    await store.ensure_space(spec=spec)
    await store.ensure_space(spec=spec, indexes={"lang": "keyword", "year": "integer"})
    await store.ensure_space(spec=spec, indexes={"lang": "keyword"})  # idempotent
    with pytest.raises(InvalidInputError, match="indexed already"):
        await store.ensure_space(spec=spec, indexes={"owner": "keyword"})
    dot = spec.model_copy(update={"distance": "dot"})
    assert dot.space_id != spec.space_id  # distance is part of the space's identity
    with pytest.raises(ValueError, match="dense space"):
        SpaceSpec(lineage_root="ns", feature_uri=URI, dimension=4, idf=True)
    sparse_spec = SpaceSpec(lineage_root="ns", feature_uri=SPARSE_URI, dimension=100, kind="sparse")
    assert sparse_spec.idf and sparse_spec.distance is None
    await store.drop_space(spec=spec)
    with pytest.raises(NotFoundError):
        await store.get_view(space=spec, owner="col_a")


async def test_replayed_and_stale_writes_are_no_ops(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    view = await store.create_view(space=space, owner="col_a")
    view = await store.upsert(view=view, points=docs("a", v=1), position=1)
    view = await store.upsert(view=view, points=docs("a", v=2), position=5)
    view = await store.delete(view=view, document_ids=["a"], position=6)
    # At-least-once delivery replays old writes: they must not resurrect or overwrite anything.
    view = await store.upsert(view=view, points=docs("a", v=2), position=5)
    view = await store.upsert(view=view, points=docs("a", v=1), position=1)
    assert await store.count(view=view) == 0
    view = await store.upsert(view=view, points=docs("a", v=3), position=8)
    view = await store.delete(view=view, document_ids=["a"], position=7)  # older than v3
    view = await store.upsert(view=view, points=docs("a", v=3), position=8)
    assert [p.payload["v"] for p in await store.get(view=view, document_ids=["a"])] == [3]


async def test_sparse_idf_ranks_rare_terms_higher_and_counts_only_the_view(
    store: ForkableVectorStore,
) -> None:
    spec = SpaceSpec(lineage_root="ns_root", feature_uri=SPARSE_URI, dimension=50, kind="sparse")
    await store.ensure_space(spec=spec)
    parent = await store.create_view(space=spec, owner="col_parent")
    corpus = {
        "common-only": {1: 1.0},
        "rare": {2: 1.0},
        "both": {1: 1.0, 2: 1.0},
        "other-1": {1: 1.0, 3: 1.0},
        "other-2": {1: 1.0, 4: 1.0},
        "other-3": {5: 1.0},
    }
    points = [PointIn(document_id=d, vector=sparse(t)) for d, t in corpus.items()]
    parent = await store.upsert(view=parent, points=points, position=1)

    def idf(df: int, n: int) -> float:
        return math.log((n - df + 0.5) / (df + 0.5) + 1)

    hits = await store.search(view=parent, query=sparse({1: 1.0, 2: 1.0}), top_k=10)
    scores = {h.document_id: h.score for h in hits}
    assert hits[0].document_id == "both"
    assert scores["rare"] > scores["common-only"]  # the rare term weighs more
    assert scores["rare"] == pytest.approx(idf(2, 6), rel=1e-4)
    assert scores["common-only"] == pytest.approx(idf(4, 6), rel=1e-4)
    assert "other-3" not in scores

    # IDF is computed over what the view sees, not over the shared collection.
    child = await store.fork_view(parent=parent, owner="col_child", at_position=1)
    child = await store.delete(view=child, document_ids=["other-1", "other-2"], position=2)
    parent = await store.upsert(
        view=parent, points=[PointIn(document_id="more", vector=sparse({2: 1.0}))], position=3
    )
    child_scores = {
        h.document_id: h.score
        for h in await store.search(view=child, query=sparse({1: 1.0}), top_k=10)
    }
    assert child_scores["common-only"] == pytest.approx(idf(2, 4), rel=1e-4)
    parent_scores = {
        h.document_id: h.score
        for h in await store.search(view=parent, query=sparse({1: 1.0}), top_k=10)
    }
    assert parent_scores["common-only"] == pytest.approx(idf(4, 7), rel=1e-4)
    with pytest.raises(InvalidInputError, match="outside the vocabulary"):
        await store.search(view=child, query=sparse({50: 1.0}))


async def test_vacuum_keeps_what_forks_reference_and_removes_the_rest(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", "c"), position=1)
    parent = await store.delete(view=parent, document_ids=["a"], position=2)  # dead, unreferenced
    child = await store.fork_view(parent=parent, owner="col_child", at_position=3)
    parent = await store.delete(view=parent, document_ids=["b"], position=4)  # child still sees b
    parent = await store.upsert(view=parent, points=docs("c", v=2), position=5)  # old c: child's

    assert await store.vacuum(space=space) == 1  # only "a"
    assert await store.vacuum(space=space) == 0
    assert set(await visible(store, child)) == {"b", "c"}
    assert (await store.get(view=child, document_ids=["c"]))[0].born == 1
    assert set(await visible(store, parent)) == {"c"}

    # Once the fork is gone, what only it referenced is collected; live points are kept.
    await store.drop_view(view=child)
    assert await store.vacuum(space=space) == 2  # b and the old c
    assert set(await visible(store, parent)) == {"c"}
    # A dropped root view's live points go too (nothing references them any more).
    await store.drop_view(view=parent)
    assert await store.vacuum(space=space) == 1


async def test_vacuum_after_materialise_frees_the_inherited_points(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b"), position=1)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=2)
    parent = await store.delete(view=parent, document_ids=["a", "b"], position=3)
    assert await store.vacuum(space=space) == 0  # the child still reads a and b
    child = await store.materialise(view=child, position=4)
    assert await store.vacuum(space=space) == 2  # now it reads its own copies
    assert ids(await everything(store, child)) == {"a", "b"}


async def test_persistence_across_reopening_edge(tmp_path: Path, spec: SpaceSpec) -> None:
    store = EdgeVectorStore(tmp_path / "v", optimize_idle_seconds=None)
    await store.ensure_space(spec=spec)
    parent = await store.create_view(space=spec, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", "c"), position=1)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=2)
    child = await store.delete(view=child, document_ids=["a"], position=3)
    await store.close()

    reopened = EdgeVectorStore(tmp_path / "v", optimize_idle_seconds=None)
    try:
        assert await reopened.get_view(space=spec, owner="col_child") == child
        assert set(await visible(reopened, child)) == {"b", "c"}
        hits = await reopened.search(view=parent, query=dense(1), top_k=10)
        assert ids(hits) == {"a", "b", "c"}
    finally:
        await reopened.close()


async def test_edge_optimizes_when_writes_pause(tmp_path: Path, spec: SpaceSpec) -> None:
    store = EdgeVectorStore(tmp_path / "v", optimize_idle_seconds=0.01)
    try:
        await store.ensure_space(spec=spec)
        view = await store.create_view(space=spec, owner="col_a")
        view = await store.upsert(view=view, points=docs(*"abc"), position=1)
        await asyncio.sleep(0.1)  # the idle timer fires and optimizes in a worker thread
        view = await store.upsert(view=view, points=docs(*"de"), position=2)
        await store.optimize(space=spec)  # waits for a running optimization, then runs one
        assert await store.count(view=view) == 5
    finally:
        await store.close()


async def test_driver_errors_become_infrastructure_errors(tmp_path: Path, spec: SpaceSpec) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    edge = EdgeVectorStore(blocker, optimize_idle_seconds=None)
    with pytest.raises(InfrastructureError, match="qdrant edge"):
        await edge.ensure_space(spec=spec)
    await edge.close()

    server = QdrantVectorStore(
        client=AsyncQdrantClient(url="http://127.0.0.1:9", timeout=1, check_compatibility=False)
    )
    with pytest.raises(InfrastructureError, match="qdrant"):
        await server.ensure_space(spec=spec)
    await server.close()
