"""Congruence, as qdrant-client tests its local mode against the server: the same points, views
and 100 random filters give the same ids, scores (within 1e-4) and counts on both adapters.
A mismatch prints the failing filter, so it can be replayed by hand."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from libs.vectors import (
    And,
    DenseVector,
    Eq,
    Exists,
    Filter,
    ForkableVectorStore,
    Gt,
    Gte,
    In,
    IsNull,
    Lt,
    Lte,
    Ne,
    Nin,
    Not,
    Or,
    PointIn,
    ScoredPoint,
    SpaceSpec,
    View,
)
from tests.vectors.conftest import SPARSE_URI, URI, make_store, sparse

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

DIM = 16
COLOURS = ("red", "green", "blue", "cyan")


def random_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if rng.random() < 0.9:
        payload["int"] = rng.randint(0, 20)
    if rng.random() < 0.9:
        payload["float"] = round(rng.uniform(-5, 5), 3)
    roll = rng.random()
    if roll < 0.7:
        payload["kw"] = rng.choice(COLOURS)
    elif roll < 0.85:
        payload["kw"] = rng.sample(COLOURS, 2)
    if rng.random() < 0.8:
        payload["flag"] = rng.random() < 0.5
    roll = rng.random()
    if roll < 0.3:
        payload["maybe"] = None
    elif roll < 0.6:
        payload["maybe"] = rng.randint(0, 3)
    payload["tags"] = rng.sample(range(10), rng.randint(0, 3))
    return payload


def random_leaf(rng: random.Random) -> Filter:
    kind = rng.choice(["eq", "ne", "range", "in", "nin", "exists", "is_null"])
    if kind in ("eq", "ne"):
        field, value = rng.choice(
            [("int", rng.randint(0, 20)), ("kw", rng.choice(COLOURS)), ("flag", rng.random() < 0.5)]
        )
        return Eq(field=field, value=value) if kind == "eq" else Ne(field=field, value=value)
    if kind == "range":
        field = rng.choice(["int", "float"])
        value: int | float = rng.randint(0, 20) if field == "int" else round(rng.uniform(-5, 5), 2)
        return rng.choice([Gt, Gte, Lt, Lte])(field=field, value=value)
    if kind in ("in", "nin"):
        if rng.random() < 0.5:
            field, values = "kw", tuple(rng.sample(COLOURS, rng.randint(1, 3)))
        else:
            field, values = rng.choice(["int", "tags"]), tuple(rng.sample(range(20), 3))
        return In(field=field, values=values) if kind == "in" else Nin(field=field, values=values)
    field = rng.choice(["int", "kw", "maybe", "flag"])
    return Exists(field=field) if kind == "exists" else IsNull(field=field)


def random_filter(rng: random.Random, depth: int = 0) -> Filter:
    if depth >= 2 or rng.random() < 0.4:
        return random_leaf(rng)
    combinator = rng.choice(["and", "or", "not"])
    if combinator == "not":
        return Not(filter=random_filter(rng, depth + 1))
    children = tuple(random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3)))
    return And(filters=children) if combinator == "and" else Or(filters=children)


def vector(rng: random.Random) -> DenseVector:
    return DenseVector(feature_uri=URI, values=tuple(rng.gauss(0, 1) for _ in range(DIM)))


def random_points(rng: random.Random, space: SpaceSpec, prefix: str, n: int) -> list[PointIn]:
    made: list[PointIn] = []
    for i in range(n):
        if space.kind == "sparse":
            terms = {t: rng.uniform(0.5, 3) for t in rng.sample(range(30), 4)}
            made.append(
                PointIn(
                    document_id=f"{prefix}{i}", vector=sparse(terms), payload=random_payload(rng)
                )
            )
        else:
            made.append(
                PointIn(document_id=f"{prefix}{i}", vector=vector(rng), payload=random_payload(rng))
            )
    return made


async def build(store: ForkableVectorStore, spec: SpaceSpec, sparse_spec: SpaceSpec) -> list[View]:
    """The same history on either store: a parent, a fork with masks and writes, and parent
    writes and deletes after the fork; for the dense and the sparse space alike."""
    made: list[View] = []
    for space in (spec, sparse_spec):
        rng = random.Random(7)
        # Some fields indexed, some not: filters must mean the same either way.
        indexes = {"kw": "keyword", "int": "integer", "flag": "bool"}
        await store.ensure_space(spec=space, indexes=indexes)  # type: ignore[arg-type]
        parent = await store.create_view(space=space, owner="col_parent")
        parent = await store.upsert(
            view=parent, points=random_points(rng, space, "p", 120), position=10
        )
        child = await store.fork_view(parent=parent, owner="col_child", at_position=11)
        child = await store.upsert(
            view=child, points=random_points(rng, space, "c", 40), position=12
        )
        # The fork replaces ten inherited documents and deletes fifteen more.
        child = await store.upsert(
            view=child, points=random_points(rng, space, "p", 10), position=13
        )
        doomed = [f"p{i}" for i in range(10, 25)]
        child = await store.delete(view=child, document_ids=doomed, position=14)
        doomed = [f"p{i}" for i in range(20, 40)]
        parent = await store.delete(view=parent, document_ids=doomed, position=15)
        parent = await store.upsert(
            view=parent, points=random_points(rng, space, "q", 30), position=16
        )
        made += [parent, child]
    return made


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[ForkableVectorStore, ForkableVectorStore]]:
    edge = make_store("edge", tmp_path / "edge")
    local = make_store("qdrant-local", tmp_path / "unused")
    yield edge, local
    await edge.close()
    await local.close()


def same_hits(edge: list[ScoredPoint], local: list[ScoredPoint]) -> str | None:
    """None when equal up to score ties at the cut-off; else what differs."""
    if len(edge) != len(local):
        return f"{len(edge)} hits on edge, {len(local)} on local"
    for rank, (e, q) in enumerate(zip(edge, local, strict=True)):
        if abs(e.score - q.score) > 1e-4:
            return f"rank {rank}: edge {e.document_id}={e.score}, local {q.document_id}={q.score}"
    cutoff = edge[-1].score if edge else 0.0
    firm = {p.point_id for p in edge if abs(p.score - cutoff) > 1e-4}
    if firm != {p.point_id for p in local if abs(p.score - cutoff) > 1e-4}:
        return f"ids differ: edge {[p.document_id for p in edge]}, local {[p.document_id for p in local]}"
    return None


async def test_random_filters_and_queries_agree(
    stores: tuple[ForkableVectorStore, ForkableVectorStore],
) -> None:
    edge, local = stores
    spec = SpaceSpec(lineage_root="ns_root", feature_uri=URI, dimension=DIM)
    sparse_spec = SpaceSpec(
        lineage_root="ns_root", feature_uri=SPARSE_URI, dimension=30, kind="sparse"
    )
    edge_views = await build(edge, spec, sparse_spec)
    local_views = await build(local, spec, sparse_spec)
    assert edge_views == local_views

    rng = random.Random(2024)
    failures: list[str] = []
    answered = 0
    for attempt in range(100):
        view = rng.choice(edge_views)
        where = random_filter(rng)
        if view.space.kind == "sparse":
            query: Any = sparse({t: rng.uniform(0.5, 2) for t in rng.sample(range(30), 3)})
        else:
            query = vector(rng)
        top_k = rng.choice([1, 5, 10, 25])
        got_edge = await edge.search(view=view, query=query, top_k=top_k, filter=where)
        got_local = await local.search(view=view, query=query, top_k=top_k, filter=where)
        answered += bool(got_edge)
        problems = [same_hits(got_edge, got_local)]
        counts = [await s.count(view=view, filter=where) for s in (edge, local)]
        if counts[0] != counts[1]:
            problems.append(f"count: edge {counts[0]}, local {counts[1]}")
        pages = [await s.scroll(view=view, filter=where, limit=15) for s in (edge, local)]
        if [p.point_id for p in pages[0].points] != [p.point_id for p in pages[1].points]:
            problems.append("first scroll pages differ")
        if any(problems):
            failures.append(
                f"#{attempt} view {view.owner} ({view.space.kind}) top_k={top_k}: "
                f"{'; '.join(p for p in problems if p)}\n  filter: {where.model_dump_json()}"
            )
    assert not failures, "adapters disagree:\n" + "\n".join(failures)
    assert answered > 50, "the random filters are too selective to compare anything"
