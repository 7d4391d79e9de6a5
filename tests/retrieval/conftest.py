"""The retrieval service through HTTP on both stacks (the catalog suite's ``api`` fixture:
embedded SQLite + in-process bus, and PostgreSQL + Kafka), over SciFact abstracts embedded with
minilm-static@v1 by the real extractor."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.catalog.conftest import Api, api, runtime_options  # noqa: F401 (fixtures)
from tests.extractor.conftest import STATIC, scifact

STATIC_URI = "offshoot://minilm-static@v1/text_embedding"
QUERY_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}},
    "required": ["query"],
}


def search_stage(
    uri: str = STATIC_URI, top_k: int = 10, query: str = "{{INPUT.query}}", name: str = "search"
) -> dict[str, Any]:
    return {
        "stage_name": name,
        "stage_type": "filter",
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": [{"feature_uri": uri, "query": query, "top_k": top_k}]},
        },
    }


def mmr_stage(name: str = "diversify", limit: int = 5) -> dict[str, Any]:
    return {
        "stage_name": name,
        "stage_type": "sort",
        "config": {"stage_id": "mmr", "parameters": {"lambda": 0.3, "limit": limit}},
    }


async def corpus(client: Api, count: int = 40) -> tuple[str, str, list[dict[str, Any]]]:
    """A namespace with one collection over ``count`` SciFact abstracts (text = title + abstract),
    waited for until every document is searchable and the extractor is done writing:
    (namespace_id, collection_id, rows); each row gets the ``object_id`` it was stored as."""
    ns = (await client.ok("POST", "/v1/namespaces", json={"namespace_name": "papers"}))[
        "namespace_id"
    ]
    bucket = (await client.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"}))[
        "bucket_id"
    ]
    collection = await client.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "abstracts", "source": {"type": "bucket", "bucket_id": bucket},
              "feature_extractor": STATIC},
    )  # fmt: skip
    rows = scifact(count)
    objects = [
        {"fields": {"text": f"{r['title']}\n{r['text']}", "title": r["title"], "doc": r["_id"]}}
        for r in rows
    ]
    reply = await client.ok(
        "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json={"objects": objects}
    )
    for row, created in zip(rows, reply["results"], strict=True):
        row["object_id"] = created["object_id"]
    await wait_documents(client, ns, collection["collection_id"], count)
    # the collection's back-fill may write an object the live path wrote already (a new
    # version, the same vector): tests that compare two answers start after both are done
    await settled(client)
    return ns, collection["collection_id"], rows


async def settled(client: Api, quiet_seconds: float = 0.3) -> None:
    """Until the extractor's store stops moving: the last writes of an ingestion (its inbox,
    task progress) may land after every document is visible, and each moves the position that
    cache signatures are built from."""
    store = client.runtime.adapters.extractor_store
    head = await store.head_position()
    for _ in range(100):
        await asyncio.sleep(quiet_seconds)
        now = await store.head_position()
        if now == head:
            return
        head = now
    raise AssertionError("the extractor's store kept moving")


async def wait_documents(client: Api, ns: str, collection: str, count: int) -> None:
    seen = 0
    for _ in range(1500):
        response = await client.call(
            "GET", f"/v1/collections/{collection}/documents", namespace=ns,
            params={"limit": 1000},
        )  # fmt: skip
        if response.status_code == 200:
            seen = len(response.json()["results"])
            if seen == count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{collection}: {seen} documents, expected {count}")


async def retriever(
    client: Api, ns: str, collection: str, *, name: str = "search", stages: Any = None
) -> dict[str, Any]:
    body = {
        "retriever_name": name,
        "description": "titles find their abstracts",
        "collection_identifiers": [collection],
        "input_schema": QUERY_SCHEMA,
        "stages": stages or [search_stage()],
    }
    result: dict[str, Any] = await client.ok("POST", "/v1/retrievers", namespace=ns, json=body)
    return result
