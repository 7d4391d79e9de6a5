"""Retrieval service figures (issue 4): what a ``feature_search`` + ``limit`` retriever costs over
the raw vector-store query, on a collection and on its namespace's fork, the cache hit, and
throughput over HTTP with concurrent clients.

    .venv/bin/python bench/retrieval.py [--points 100000] [--queries 300] [--clients 8] [--quick]

Runs the embedded runtime (SQLite stores, in-process bus, Qdrant Edge) in a temporary directory.
A ``minilm@v1`` collection (384-d) is created through the API and ``--points`` random unit
vectors are written straight into its vector view (ingesting 100,000 objects through the
extractor would bench the extractor). The retriever searches with ``input_mode: vector``, so no
query-embedding model runs. The namespace is then cloned (the extractor forks the view; the
fork writes 1,000 points of its own and deletes 50 inherited ones, so it has two segments and
masks). Raw and pipeline queries, original and fork, are interleaved per query vector so that
machine noise hits all four alike. Pipeline and cache-hit times are server-side (the service
call, no HTTP); throughput runs uvicorn on a loopback port with ``--clients`` concurrent
``httpx`` clients in the same process (one event loop serves both sides).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from libs.vectors import DenseVector, PointIn, View
from offshoot.runtime import Runtime

MODEL = {"feature_extractor_name": "minilm", "version": "v1"}
URI = "offshoot://minilm@v1/text_embedding"
DIM = 384
BATCH = 1_000
SCHEMA = {
    "type": "object",
    "properties": {"vector": {"type": "array", "items": {"type": "number"}}},
    "required": ["vector"],
}
STAGES = [
    {"stage_name": "search", "stage_type": "filter",
     "config": {"stage_id": "feature_search", "parameters": {"searches": [
         {"feature_uri": URI, "query": "{{INPUT.vector}}", "input_mode": "vector", "top_k": 50}]}}},
    {"stage_name": "top", "stage_type": "reduce",
     "config": {"stage_id": "limit", "parameters": {"limit": 10}}},
]  # fmt: skip


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5):6.2f} ms, p95 {percentile(samples, 0.95):6.2f} ms"


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


class Bench:
    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, key: str) -> None:
        self.runtime, self.http, self.key = runtime, http, key
        assert runtime.extractor is not None and runtime.retrieval is not None
        self.extractor, self.retrieval = runtime.extractor, runtime.retrieval
        self.store = runtime.adapters.vectors

    async def ok(self, method: str, path: str, namespace: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        response = await self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def view(self, ns: str, collection: str) -> View:
        for _ in range(500):  # the extractor registers a new collection from the bus
            try:
                return await self.extractor.active_view(ns, collection)
            except Exception:
                await asyncio.sleep(0.02)
        raise TimeoutError(f"collection {collection} never registered")

    async def write(self, view: View, vectors: np.ndarray, prefix: str) -> View:
        """Points at the extractor's head position, so a fork taken later inherits them."""
        position = max(1, await self.runtime.adapters.extractor_store.head_position())
        for start in range(0, len(vectors), BATCH):
            batch = [
                PointIn(
                    document_id=f"{prefix}{start + i}",
                    vector=DenseVector(feature_uri=URI, values=tuple(v.tolist())),
                    payload={"root_object_id": f"obj_{prefix}{start + i}", "n": start + i},
                )
                for i, v in enumerate(vectors[start : start + BATCH])
            ]
            view = await self.store.upsert(view=view, points=batch, position=position)
        return view

    async def setup(self, points: int) -> tuple[str, str, str]:
        """(namespace, collection, retriever) holding ``points`` vectors."""
        ns = (await self.ok("POST", "/v1/namespaces", json={"namespace_name": "bench"}))[
            "namespace_id"
        ]
        bucket = (await self.ok("POST", "/v1/buckets", ns, json={"bucket_name": "b"}))["bucket_id"]
        collection = (
            await self.ok(
                "POST",
                "/v1/collections",
                ns,
                json={
                    "collection_name": "c",
                    "feature_extractor": MODEL,
                    "source": {"type": "bucket", "bucket_id": bucket},
                },
            )
        )["collection_id"]
        started = time.perf_counter()
        await self.write(
            await self.view(ns, collection), unit_vectors(np.random.default_rng(1), points), "d"
        )
        print(f"  loaded {points:,} points in {time.perf_counter() - started:.1f} s")
        retriever = await self.ok("POST", "/v1/retrievers", ns, json={
            "retriever_name": "vector-top10", "collection_identifiers": [collection],
            "input_schema": SCHEMA, "stages": STAGES})  # fmt: skip
        return ns, collection, retriever["retriever_id"]

    async def fork(self, ns: str) -> tuple[str, str, str]:
        """The namespace's clone: (namespace, collection, retriever), diverged from the parent."""
        task = await self.ok("POST", f"/v1/namespaces/{ns}/clone", json={"namespace_name": "fork"})
        for _ in range(3000):
            found = await self.ok("GET", f"/v1/tasks/{task['task_id']}")
            if found["status"] not in ("PENDING", "IN_PROGRESS", "PROCESSING"):
                break
            await asyncio.sleep(0.02)
        assert found["status"] == "COMPLETED", found
        clone = found["result"]["namespace_id"]
        retriever = (await self.ok("GET", "/v1/retrievers", clone))["results"][0]
        collection = retriever["collection_ids"][0]
        view = await self.write(
            await self.view(clone, collection), unit_vectors(np.random.default_rng(3), 1000), "f"
        )
        position = await self.runtime.adapters.extractor_store.head_position() + 1
        view = await self.store.delete(
            view=view, document_ids=[f"d{i}" for i in range(50)], position=position
        )
        print(f"  fork: {len(view.segments)} segments, {len(view.masked)} masks")
        return clone, collection, retriever["retriever_id"]


async def latencies(
    bench: Bench, original: tuple[str, str, str], fork: tuple[str, str, str], queries: int
) -> None:
    targets = []
    for ns, collection, retriever in (original, fork):
        targets.append((ns, retriever, await bench.view(ns, collection)))
    samples: dict[str, list[float]] = {
        k: [] for k in ("raw", "pipeline", "raw fork", "pipeline fork", "cache hit")
    }
    vectors = unit_vectors(np.random.default_rng(7), queries + 20)
    for index, vector in enumerate(vectors):
        values = vector.tolist()
        query = DenseVector(feature_uri=URI, values=tuple(values))
        measured = {}
        for suffix, (ns, retriever, view) in zip(("", " fork"), targets, strict=True):
            measured["raw" + suffix] = await timed(
                lambda v=view, q=query: bench.store.search(view=v, query=q, top_k=50)
            )
            measured["pipeline" + suffix] = await timed(
                lambda n=ns, r=retriever, x=values: bench.retrieval.execute(n, r, {"vector": x})
            )
        ns, retriever, _ = targets[0]
        measured["cache hit"] = await timed(
            lambda n=ns, r=retriever, x=values: bench.retrieval.execute(n, r, {"vector": x})
        )
        if index >= 20:  # warm-up
            for key, value in measured.items():
                samples[key].append(value)
    print(f"## Latency over {queries} query vectors (server-side, interleaved)")
    for key, values in samples.items():
        print(f"  {key:<14} {figures(values)}")
    overhead = statistics.median(samples["pipeline"]) - statistics.median(samples["raw"])
    ratio = statistics.median(samples["pipeline fork"]) / statistics.median(samples["pipeline"])
    print(f"  pipeline overhead over raw, p50: {overhead:.2f} ms (target ≤ 3 ms)")
    print(f"  forked / original pipeline p50: {ratio:.2f} (target ≤ 1.3)")
    print(f"  cache hit p50: {statistics.median(samples['cache hit']):.2f} ms (target ≤ 1 ms)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def throughput(bench: Bench, ns: str, retriever: str, clients: int, per_client: int) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(bench.runtime.asgi, host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    headers = {"Authorization": f"Bearer {bench.key}", "X-Namespace": ns}
    vectors = unit_vectors(np.random.default_rng(11), clients * per_client).tolist()
    path = f"/v1/retrievers/{retriever}/execute"

    async def client(index: int) -> list[float]:
        times = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            for vector in vectors[index * per_client : (index + 1) * per_client]:
                started = time.perf_counter()
                response = await http.post(path, json={"inputs": {"vector": vector}})
                assert response.status_code == 200, response.text
                times.append((time.perf_counter() - started) * 1000)
        return times

    started = time.perf_counter()
    per_request = [t for times in await asyncio.gather(*map(client, range(clients))) for t in times]
    elapsed = time.perf_counter() - started
    server.should_exit = True
    await serving
    print(f"## HTTP throughput, {clients} concurrent clients, distinct query vectors (no cache)")
    print(f"  {len(per_request) / elapsed:7.1f} requests/s; per request {figures(per_request)}")


async def run(points: int, queries: int, clients: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        runtime = await Runtime.open(
            data_dir=Path(scratch), inference_cache=Path(scratch) / "cache.sqlite3"
        )
        _, key = await runtime.catalog.bootstrap("bench")
        transport = httpx.ASGITransport(app=runtime.asgi)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as http:
                bench = Bench(runtime, http, key.api_key)
                print(
                    f"## Setup: {points:,} random unit 384-d points, retriever feature_search(top_k 50) + limit(10)"
                )
                original = await bench.setup(points)
                fork = await bench.fork(original[0])
                await latencies(bench, original, fork, queries)
                await throughput(
                    bench, original[0], original[2], clients, max(10, queries // clients)
                )
        finally:
            await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="10,000 points, 100 queries")
    args = parser.parse_args()
    if args.quick:
        args.points, args.queries = 10_000, 100
    asyncio.run(run(args.points, args.queries, args.clients))


if __name__ == "__main__":
    main()
