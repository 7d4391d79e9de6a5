"""Taxonomy apply throughput: a flat taxonomy over 20 topic labels applied to 5,000 SciFact
abstracts (minilm-static@v1), embedded stack. Prints documents/s and the share of the apply's
time spent in the backing retriever vs in writing the labels (the extractor's
``documents_enriched`` event + the vector upserts); target: writing under 20% of the total.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/taxonomy.py [--documents 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from offshoot.runtime import Runtime
from tests.catalog.conftest import Api
from tests.extractor.conftest import STATIC, scifact
from tests.retrieval.conftest import retriever, search_stage
from tests.taxonomy.conftest import TOPICS, label_collection, wait_task


async def _papers(api: Api, count: int) -> tuple[str, str]:
    """A namespace whose collection holds ``count`` abstracts, waited for in the vector store."""
    ns = (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "bench"}))["namespace_id"]
    bucket = (await api.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"}))[
        "bucket_id"
    ]
    collection = (
        await api.ok(
            "POST",
            "/v1/collections",
            namespace=ns,
            json={
                "collection_name": "abstracts",
                "feature_extractor": STATIC,
                "source": {"type": "bucket", "bucket_id": bucket},
            },
        )
    )["collection_id"]
    rows = scifact(count)
    for start in range(0, count, 500):
        objects = [
            {"fields": {"text": f"{r['title']}\n{r['text']}", "title": r["title"]}}
            for r in rows[start : start + 500]
        ]
        await api.ok(
            "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json={"objects": objects}
        )
    assert api.runtime.extractor is not None
    while True:
        try:
            view = await api.runtime.extractor.active_view(ns, collection)
            if await api.runtime.adapters.vectors.count(view=view) >= count:
                return ns, str(collection)
        except Exception:
            pass
        await asyncio.sleep(0.5)


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = await Runtime.open(data_dir=Path(tmp))
        _, key = await runtime.catalog.bootstrap("bench")
        transport = httpx.ASGITransport(app=runtime.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            api = Api(runtime, http, key.api_key)
            loaded = time.perf_counter()
            ns, papers = await _papers(api, count)
            topics = await label_collection(api, ns, "topics", dict(TOPICS))
            print(f"loaded {count} documents in {time.perf_counter() - loaded:.1f} s")
            backing = await retriever(api, ns, topics, name="topic-search",
                                      stages=[search_stage(top_k=20)])  # fmt: skip
            taxonomy = await api.ok("POST", "/v1/taxonomies", namespace=ns, json={
                "taxonomy_name": "topics", "retriever_id": backing["retriever_id"],
                "input_mappings": [{"input_key": "query", "path": "text"}],
                "enrichment_fields": ["area"], "output_field": "topic",
            })  # fmt: skip
            for run in ("first apply", "re-apply (nothing changes)"):
                started = time.perf_counter()
                task = await api.ok(
                    "POST", f"/v1/taxonomies/{taxonomy['taxonomy_id']}/apply", namespace=ns,
                    json={"collection_id": papers},
                )  # fmt: skip
                done = await wait_task(api, task["task_id"], seconds=3600)
                wall = time.perf_counter() - started
                result = done["result"]
                t = result["timings"]
                print(
                    f"{run}: {result['documents_seen']} documents, "
                    f"{result['documents_changed']} changed, {result['failed']} failed, "
                    f"{wall:.1f} s wall, {result['documents_seen'] / wall:.0f} documents/s; "
                    f"retriever {t['retriever_s']:.1f} s ({t['retriever_s'] / t['total_s']:.0%}), "
                    f"writing {t['writing_s']:.1f} s ({t['writing_s'] / t['total_s']:.0%}), "
                    f"reading {t['reading_s']:.1f} s ({t['reading_s'] / t['total_s']:.0%})"
                )
        await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=5000)
    asyncio.run(main(parser.parse_args().documents))
