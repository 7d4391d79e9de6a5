"""The SDK's alias variant methods against the embedded server (uvicorn on loopback)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from offshoot import Client
from offshoot.demo import SCHEMA, STATIC, scifact
from services.retrieval.variants import in_canary


def _search(uri: str, top_k: int) -> dict[str, Any]:
    return {"stage_name": "search", "stage_type": "filter", "config": {"stage_id": "feature_search", "parameters": {
        "searches": [{"feature_uri": uri, "query": "{{INPUT.query}}", "top_k": top_k}]}}}  # fmt: skip


def test_canary_and_shadow_through_the_sdk(tmp_path: Path) -> None:
    with Client.embedded(tmp_path) as client:
        client.namespaces.create("search")
        ns = client.with_namespace("search")
        bucket = ns.buckets.create("papers", bucket_schema=SCHEMA, unique_key="_id")
        collection = ns.collections.create(
            "abstracts", source={"type": "bucket", "bucket_id": bucket.bucket_id},
            feature_extractor=STATIC,
        )  # fmt: skip
        rows = list(scifact(10))
        ns.objects.create_batch(bucket.bucket_id, [{"fields": row} for row in rows])
        deadline = time.monotonic() + 60
        while len(ns.documents.list(collection.collection_id, limit=100).results) < 10:
            assert time.monotonic() < deadline, "documents never arrived"
            time.sleep(0.1)
        schema = {"type": "object", "properties": {"query": {"type": "string"}}}
        wide, narrow = (
            ns.retrievers.create(name, collection_identifiers=["abstracts"],
                                 stages=[_search(collection.feature_uri, k)], input_schema=schema)
            for name, k in (("wide", 5), ("narrow", 2))
        )  # fmt: skip
        alias = ns.aliases.create("search", wide.retriever_id)

        canaried = ns.aliases.canary("search", narrow.retriever_id, 40, reason="smaller pages")
        user = next(f"u{i}" for i in range(100) if in_canary(alias.alias_id, f"u{i}", 40))
        served = ns.aliases.execute("search", {"query": rows[0]["title"]}, user_id=user)
        ns.aliases.clear_canary("search", reason="done")
        ns.aliases.shadow("search", narrow.retriever_id)
        ns.aliases.execute("search", {"query": rows[1]["title"]})
        while not ns.aliases.shadow_report("search").results:
            assert time.monotonic() < deadline + 30, "no shadow comparison"
            time.sleep(0.05)
        report = ns.aliases.shadow_report("search")
        ns.aliases.clear_shadow("search")
        history = ns.aliases.history("search").results

    assert canaried.canary == {"retriever_id": narrow.retriever_id, "percent": 40}
    assert (served.served_by, served.variant) == (narrow.retriever_id, "canary")
    assert report.results[0]["shadow_retriever_id"] == narrow.retriever_id
    assert report.results[0]["mean_overlap_at_k"] == 2 / 5
    assert [m["kind"] for m in history] == [
        "create", "canary", "canary_cleared", "shadow", "shadow_cleared",
    ]  # fmt: skip
