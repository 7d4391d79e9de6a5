"""Vector store figures on the embedded adapter (Qdrant Edge): filtered search through a view and
through a fork of it, and fork time for a small and a large parent.

    .venv/bin/python bench/vectors.py [--points 100000] [--queries 300] [--keep DIR]

Builds ``--points`` random 384-d unit vectors (HNSW build takes minutes on 2 cores; ``--keep``
reuses a directory built by an earlier run). Searches go through the public async API, so they
include the worker-thread hop and result models. The original and forked views answer the same
queries interleaved, so machine noise (other processes) hits both alike: their ratio is the
stable figure, as is the ratio of fork times.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from libs.vectors import (
    DenseVector,
    EdgeVectorStore,
    Eq,
    Filter,
    PointIn,
    SpaceSpec,
    View,
)

URI = "offshoot://minilm@v1/text_embedding"
DIM = 384
BATCH = 1_000


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(store: EdgeVectorStore, spec: SpaceSpec, points: int, seed: int) -> View:
    """A root view holding ``points`` documents, written in batches at positions 1, 2, ..."""
    await store.ensure_space(spec=spec, indexes={"category": "keyword"})
    view = await store.create_view(space=spec, owner=f"col_{spec.lineage_root}")
    if await store.count(view=view) >= points:
        return view
    rng = np.random.default_rng(seed)
    for position, start in enumerate(range(0, points, BATCH), start=1):
        vectors = unit_vectors(rng, min(BATCH, points - start))
        batch = [
            PointIn(
                document_id=f"d{start + i}",
                vector=DenseVector(feature_uri=URI, values=tuple(v.tolist())),
                payload={"category": f"c{(start + i) % 10}", "rank": start + i},
            )
            for i, v in enumerate(vectors)
        ]
        view = await store.upsert(view=view, points=batch, position=position)
    return view


async def recall_at_10(
    store: EdgeVectorStore, root: View, fork: View, points: int, queries: list[DenseVector]
) -> tuple[float, float]:
    """HNSW through the view filters against exact top-10 over the same visible points."""
    rng = np.random.default_rng(1)  # the load's vectors, regenerated batch by batch
    base = np.concatenate(
        [unit_vectors(rng, min(BATCH, points - start)) for start in range(0, points, BATCH)]
    )
    extra = unit_vectors(np.random.default_rng(3), 100)
    everything = np.concatenate([base, extra])
    names = [f"d{i}" for i in range(points)] + [f"x{i}" for i in range(100)]
    hidden = {"original view": set(range(50)), "forked view": set(range(50, 100))}
    results = []
    for view, label in ((root, "original view"), (fork, "forked view")):
        keep = np.array([i not in hidden[label] for i in range(len(names))])
        found = 0
        for query in queries:
            scores = everything @ np.asarray(query.values, dtype=np.float32)
            scores[~keep] = -np.inf
            exact = {names[i] for i in np.argsort(-scores)[:10]}
            hits = await store.search(view=view, query=query, top_k=10)
            found += len(exact & {h.document_id for h in hits})
        results.append(found / (10 * len(queries)))
    return results[0], results[1]


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def fork_times(store: EdgeVectorStore, parent: View, at: int, label: str) -> list[float]:
    samples = []
    for i in range(20):
        owner = f"col_{label}_fork{i}_{random.randrange(1 << 30)}"
        samples.append(
            await timed(lambda o=owner: store.fork_view(parent=parent, owner=o, at_position=at))
        )
    return samples


async def main(points: int, queries: int, keep: Path | None) -> None:
    data_dir = keep or Path(tempfile.mkdtemp(prefix="offshoot-bench-vectors-"))
    store = EdgeVectorStore(data_dir, optimize_idle_seconds=None)
    big = SpaceSpec(lineage_root="ns_big", feature_uri=URI, dimension=DIM)
    small = SpaceSpec(lineage_root="ns_small", feature_uri=URI, dimension=DIM)
    try:
        print(f"Edge vector store in {data_dir}: {points:,} random {DIM}-d unit vectors")
        seconds = await timed(lambda: load(store, big, points, seed=1))
        root = await store.get_view(space=big, owner="col_ns_big")
        print(f"  load (upsert, batches of {BATCH:,}):  {seconds:8.1f} s")
        seconds = await timed(lambda: store.optimize(space=big))
        print(f"  optimize (HNSW build):              {seconds:8.1f} s")
        small_root = await load(store, small, 1_000, seed=2)
        await store.optimize(space=small)

        # A fork at the head; then both sides move on: the parent writes and deletes after the
        # fork (invisible to the fork), the fork writes and deletes inherited points (masks).
        head = 1 + (points - 1) // BATCH
        fork_owner = f"col_bench_fork_{random.randrange(1 << 30)}"
        fork = await store.fork_view(parent=root, owner=fork_owner, at_position=head + 1)
        rng = np.random.default_rng(3)
        extra = [
            PointIn(
                document_id=f"x{i}",
                vector=DenseVector(feature_uri=URI, values=tuple(v.tolist())),
                payload={"category": f"c{i % 10}"},
            )
            for i, v in enumerate(unit_vectors(rng, 100))
        ]
        root = await store.upsert(view=root, points=extra, position=head + 2)
        root = await store.delete(
            view=root, document_ids=[f"d{i}" for i in range(50)], position=head + 3
        )
        fork = await store.upsert(view=fork, points=extra, position=head + 4)
        fork = await store.delete(
            view=fork, document_ids=[f"d{i}" for i in range(50, 100)], position=head + 5
        )
        print(
            f"  fork: {len(fork.segments)} segments, {len(fork.masked)} masks; "
            f"visible: original {await store.count(view=root):,}, fork {await store.count(view=fork):,}"
        )

        category: Filter = Eq(field="category", value="c3")
        cases: dict[str, tuple[View, Filter | None]] = {
            "original view": (root, None),
            "forked view": (fork, None),
            "original view + category filter": (root, category),
            "forked view + category filter": (fork, category),
        }
        qs = [
            DenseVector(feature_uri=URI, values=tuple(v.tolist()))
            for v in unit_vectors(np.random.default_rng(4), queries)
        ]
        latencies: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        order = random.Random(5)
        for query in qs[:20]:  # warm-up
            for view, where in cases.values():
                await store.search(view=view, query=query, top_k=10, filter=where)
        for _round in range(2):
            for query in qs:
                order.shuffle(names)
                for name in names:
                    view, where = cases[name]
                    latencies[name].append(
                        await timed(
                            lambda v=view, w=where, q=query: store.search(
                                view=v, query=q, top_k=10, filter=w
                            )
                        )
                    )
        print(f"\nfiltered top-10 search through a view ({2 * queries} queries each, interleaved)")
        for name, samples in latencies.items():
            p50, p95 = percentile(samples, 0.5) * 1e3, percentile(samples, 0.95) * 1e3
            print(f"  {name:34s} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
        ratio = percentile(latencies["forked view"], 0.5) / percentile(
            latencies["original view"], 0.5
        )
        print(f"  forked / original p50:             {ratio:6.2f}x")
        recall = await recall_at_10(store, root, fork, points, qs[:50])
        print(
            f"  recall@10 vs exact (50 queries):   original {recall[0]:.3f}, fork {recall[1]:.3f}"
        )
        hops = [await timed(lambda: asyncio.to_thread(lambda: None)) for _ in range(200)]
        print(f"  (of which the worker-thread hop:   p50 {percentile(hops, 0.5) * 1e3:6.3f} ms)")

        big_forks = await fork_times(store, root, head + 6, "big")
        small_forks = await fork_times(store, small_root, 2, "small")
        small_p50, big_p50 = percentile(small_forks, 0.5), percentile(big_forks, 0.5)
        print("\nfork_view time (p50 over 20)")
        print(f"  parent with {1_000:>7,} points:        {small_p50 * 1e3:6.2f} ms")
        print(f"  parent with {points:>7,} points:        {big_p50 * 1e3:6.2f} ms")
        print(f"  ratio large / small:                {big_p50 / small_p50:6.2f}")
    finally:
        await store.close()
        if keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="data directory to build once and reuse")
    args = parser.parse_args()
    asyncio.run(main(args.points, args.queries, args.keep))
