"""The extractor service end to end: objects in → stored vectors out, against the model alone,
and the time and bytes of a collection clone (a vector-view fork) for a small and a large one.

    .venv/bin/python bench/pipeline.py [--large 100000] [--quick] [--large-via direct|pipeline]

Runs the embedded runtime (SQLite stores, in-process bus, Qdrant Edge) in a temporary directory
with a cold inference cache. Throughputs are measured in the same run as the model alone, so the
ratio is what matters. The small collection is filled through the pipeline; the large one by
default with random unit vectors upserted straight into the collection's view (``direct``: the
clone only forks the view, so how the points got there does not matter, and 100,000 objects
through the catalog take minutes); ``--large-via pipeline`` sends them as objects instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from libs.datasets import scifact_dir
from libs.extractors import get_extractor
from libs.vectors import DenseVector, PointIn
from offshoot.runtime import Runtime


def abstracts(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with gzip.open(scifact_dir() / "corpus.jsonl.gz", "rt") as lines:
        for line in lines:
            row = json.loads(line)
            rows.append({"_id": row["_id"], "text": f"{row['title']} {row['text']}"})
            if len(rows) == count:
                return rows
    # Past SciFact's 5,183 abstracts, repeat them under new ids (the large clone needs volume).
    base = list(rows)
    while len(rows) < count:
        source = base[len(rows) % len(base)]
        rows.append({"_id": f"{source['_id']}-{len(rows)}", "text": source["text"]})
    return rows


class Bench:
    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, key: str) -> None:
        self.runtime, self.http, self.key = runtime, http, key

    async def ok(self, method: str, path: str, namespace: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        response = await self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def collection(self, ns: str, model: str) -> tuple[str, str]:
        bucket = await self.ok(
            "POST", "/v1/buckets", ns, json={"bucket_name": f"b{uuid.uuid4().hex[:6]}"}
        )
        body = {"collection_name": f"c{uuid.uuid4().hex[:6]}", "source": {"type": "bucket", "bucket_id": bucket["bucket_id"]},
                "feature_extractor": {"feature_extractor_name": model, "version": "v1"}}  # fmt: skip
        collection = await self.ok("POST", "/v1/collections", ns, json=body)
        return bucket["bucket_id"], collection["collection_id"]

    async def documents(self, ns: str, collection: str) -> int:
        service = self.runtime.extractor
        assert service is not None
        view = await service.active_view(ns, collection)
        return await self.runtime.adapters.vectors.count(view=view)

    async def ingest(
        self, ns: str, bucket: str, collection: str, rows: list[dict[str, Any]]
    ) -> float:
        """Seconds from the first object sent to the last vector stored."""
        started = time.perf_counter()
        for start in range(0, len(rows), 1000):
            batch = [{"fields": row} for row in rows[start : start + 1000]]
            await self.ok(
                "POST", f"/v1/buckets/{bucket}/objects/batch", ns, json={"objects": batch}
            )
        # every poll counts points in the vector store, on the cores the model runs on: poll
        # a few times a second (±0.1 s on a ~30 s run), not 20 times
        while await self.documents(ns, collection) < len(rows):  # noqa: ASYNC110 (polling the store)
            await asyncio.sleep(0.2)
        return time.perf_counter() - started

    async def load_direct(self, ns: str, collection: str, count: int) -> float:
        """Seconds to upsert ``count`` random unit vectors into the collection's view, in batches
        at successive extractor positions (as the pipeline would, without the model)."""
        service = self.runtime.extractor
        assert service is not None
        while await service.collection(ns, collection) is None:  # noqa: ASYNC110 (the bus hop)
            await asyncio.sleep(0.01)
        view = await service.active_view(ns, collection)
        uri = (await service.collection(ns, collection) or {})["feature_uri"]
        rng = np.random.default_rng(7)
        started = time.perf_counter()
        for start in range(0, count, 2000):
            vectors = rng.standard_normal((min(2000, count - start), 256)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            points = [
                PointIn(document_id=f"doc_direct{start + i}",
                        vector=DenseVector(feature_uri=uri, values=tuple(v.tolist())),
                        payload={"collection_id": collection, "root_object_id": f"obj_{start + i}"})
                for i, v in enumerate(vectors)
            ]  # fmt: skip
            position = await self.runtime.adapters.extractor_store.head_position()
            view = await self.runtime.adapters.vectors.upsert(
                view=view, points=points, position=position
            )
        return time.perf_counter() - started

    async def clone(self, ns: str, collection: str) -> tuple[float, int]:
        """Milliseconds until the clone's view is registered (searchable), and the bytes of events
        it wrote. Counting the clone's points is checked afterwards, outside the timing: a count
        over 100,000 points costs more than the fork it would be timing."""
        stores = (self.runtime.store, self.runtime.adapters.extractor_store)
        heads = [await store.head_position() for store in stores]
        started = time.perf_counter()
        clone = await self.ok(
            "POST",
            f"/v1/collections/{collection}/clone",
            ns,
            json={"collection_name": f"k{uuid.uuid4().hex[:6]}"},
        )
        service = self.runtime.extractor
        assert service is not None
        while True:
            try:
                await service.active_view(ns, clone["collection_id"])
                break
            except Exception:  # not registered (or not forked) by the extractor yet
                await asyncio.sleep(0.001)
        elapsed = (time.perf_counter() - started) * 1000
        expected = await self.documents(ns, collection)
        assert await self.documents(ns, clone["collection_id"]) == expected
        written = 0
        for store, head in zip(stores, heads, strict=True):
            for event in await store.read_all(from_position=head, limit=10_000):
                written += len(json.dumps(event.data)) + len(json.dumps(event.metadata))
        return elapsed, written


async def run(large: int, large_via: str, transformer_objects: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        runtime = await Runtime.open(
            data_dir=Path(scratch), inference_cache=Path(scratch) / "cache.sqlite3"
        )
        _, key = await runtime.catalog.bootstrap("bench")
        transport = httpx.ASGITransport(app=runtime.asgi)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=600
        ) as http:
            bench = Bench(runtime, http, key.api_key)
            ns = (await bench.ok("POST", "/v1/namespaces", json={"namespace_name": "bench"}))[
                "namespace_id"
            ]
            print(
                "## Pipeline throughput: objects in → vectors stored (embedded, cold inference cache)"
            )
            for model, count in (("minilm-static", 1000), ("minilm", transformer_objects)):
                rows = abstracts(count)
                extractor = get_extractor(model, "v1")
                extractor.embed(["warm-up"])
                started = time.perf_counter()
                extractor.embed([row["text"] for row in rows])
                raw = count / (time.perf_counter() - started)
                bucket, collection = await bench.collection(ns, model)
                seconds = await bench.ingest(ns, bucket, collection, rows)
                print(f"  {model + '@v1':<18} {count:>6,} objects: raw model {raw:8.1f} texts/s, "
                      f"pipeline {count / seconds:8.1f} objects/s, ratio {count / seconds / raw:.2f}")  # fmt: skip
            print("## Collection clone (same extractor: a vector-view fork)")
            p50s = []
            for count in (1000, large):
                bucket, collection = await bench.collection(ns, "minilm-static")
                if count == large and large_via == "direct":
                    seconds = await bench.load_direct(ns, collection, count)
                    print(
                        f"  (the {count:,} points loaded straight into the view: {seconds:.1f} s)"
                    )
                else:
                    seconds = await bench.ingest(ns, bucket, collection, abstracts(count))
                    print(f"  (the {count:,} points ingested as objects through the pipeline: "
                          f"{seconds:.1f} s, {count / seconds:,.0f} objects/s)")  # fmt: skip
                samples, written = [], []
                for _ in range(20):
                    elapsed, size = await bench.clone(ns, collection)
                    samples.append(elapsed)
                    written.append(size)
                p50s.append(statistics.median(samples))
                print(f"  {count:>7,} points: clone until visible p50 {p50s[-1]:6.2f} ms, "
                      f"p95 {sorted(samples)[18]:6.2f} ms, event bytes written {statistics.median(written):,.0f}")  # fmt: skip
            print(f"  ratio large/small p50: {p50s[1] / p50s[0]:.2f}")
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000, help="points in the large collection")
    parser.add_argument("--quick", action="store_true",
                        help="a 10,000-point large collection and 100 minilm objects, not 1,000")  # fmt: skip
    parser.add_argument("--large-via", choices=("direct", "pipeline"), default="direct",
                        help="how the large collection is filled (see the module doc)")  # fmt: skip
    args = parser.parse_args()
    asyncio.run(
        run(10_000 if args.quick else args.large, args.large_via, 100 if args.quick else 1000)
    )


if __name__ == "__main__":
    main()
