"""The extractor end to end on both stacks: the real catalog (``Runtime``) with the extractor
installed on the same bus, its own store, Qdrant Edge and an inference cache in a temporary
directory. ``embedded`` is SQLite + the in-process bus, ``distributed`` PostgreSQL + Kafka (run
when ``OFFSHOOT_DATABASE_URL``/``OFFSHOOT_KAFKA`` are set): one suite, every assertion the same.
Everything goes through HTTP, as a user would."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.datasets import scifact_dir
from libs.sources import SourceObject
from libs.vectors import EdgeVectorStore, View
from offshoot.runtime import Runtime
from services.extractor import ExtractorService
from tests.infra import kafka_servers, postgres_schema

SCIFACT = scifact_dir() / "corpus.jsonl.gz"
STATIC = {"feature_extractor_name": "minilm-static", "version": "v1"}


def scifact(count: int, skip: int = 0) -> list[dict[str, Any]]:
    """The first ``count`` SciFact abstracts after ``skip`` as object fields (_id, title, text)."""
    rows: list[dict[str, Any]] = []
    with gzip.open(SCIFACT, "rt") as lines:
        for index, line in enumerate(lines):
            if index < skip:
                continue
            if len(rows) == count:
                break
            rows.append(json.loads(line))
    return rows


class GatedSources:
    """The catalog's own SourceReader behind a gate, so a test can hold a trigger mid-way."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.open.set()

    async def bucket_objects(
        self, *, namespace_id: str, bucket_id: str, after: str | None = None, limit: int = 500
    ) -> list[SourceObject]:
        await self.open.wait()
        result: list[SourceObject] = await self.inner.bucket_objects(
            namespace_id=namespace_id, bucket_id=bucket_id, after=after, limit=limit
        )
        return result


@dataclass
class Stack:
    runtime: Runtime
    service: ExtractorService
    vectors: EdgeVectorStore
    sources: GatedSources
    http: httpx.AsyncClient
    key: str
    tmp: Path

    async def call(
        self, method: str, path: str, *, namespace: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        return await self.http.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.call(method, path, **kw)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def namespace(self, name: str | None = None) -> str:
        body = {"namespace_name": name or f"ns-{uuid.uuid4().hex[:8]}"}
        return str((await self.ok("POST", "/v1/namespaces", json=body))["namespace_id"])

    async def bucket(self, ns: str) -> str:
        body = {"bucket_name": f"b{uuid.uuid4().hex[:6]}"}
        return str((await self.ok("POST", "/v1/buckets", namespace=ns, json=body))["bucket_id"])

    async def collection(
        self, ns: str, source: dict[str, Any], extractor: dict[str, Any] | None = None
    ) -> str:
        body = {"collection_name": f"c{uuid.uuid4().hex[:6]}", "source": source,
                "feature_extractor": extractor or STATIC}  # fmt: skip
        return str(
            (await self.ok("POST", "/v1/collections", namespace=ns, json=body))["collection_id"]
        )

    async def objects(self, ns: str, bucket: str, items: list[dict[str, Any]]) -> list[str]:
        body = {"objects": [item if "fields" in item else {"fields": item} for item in items]}
        reply = await self.ok(
            "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json=body
        )
        return [r["object_id"] for r in reply["results"] if r["status"] == "CREATED"]

    async def documents(self, ns: str, collection: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.ok("GET", f"/v1/collections/{collection}/documents", namespace=ns,
                                 params={"limit": 500, "offset": offset})  # fmt: skip
            found += page["results"]
            if not page["has_more"]:
                return found
            offset += 500

    async def wait_documents(self, ns: str, collection: str, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for _ in range(600):
            response = await self.call("GET", f"/v1/collections/{collection}/documents",
                                       namespace=ns, params={"limit": 1000})  # fmt: skip
            if response.status_code == 200 and len(response.json()["results"]) == count:
                return await self.documents(ns, collection)
            if response.status_code == 200:
                found = response.json()["results"]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{collection}: {len(found)} documents, expected {count}")

    async def wait_task(self, task_id: str) -> dict[str, Any]:
        """The finished task. A task another service created reaches the catalog over the bus,
        so it may be unknown (404) for a moment."""
        for _ in range(1500):
            response = await self.call("GET", f"/v1/tasks/{task_id}")
            if response.status_code != 404:
                assert response.status_code == 200, response.text
                task: dict[str, Any] = response.json()
                if task["status"] not in ("PENDING", "IN_PROGRESS", "PROCESSING"):
                    return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"task {task_id} did not finish")

    async def view(self, ns: str, collection: str) -> View:
        return await self.service.active_view(ns, collection)


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The runtime with its built-in extractor; the catalog's source reader is gated."""
    options: dict[str, Any] = {
        "data_dir": tmp_path, "inference_cache": tmp_path / "inference-cache.sqlite3",
        "extractor_options": {"page_size": 32},
    }  # fmt: skip
    if request.param == "embedded":
        async for stack in _stack(options):
            yield stack
        return
    servers = kafka_servers()
    async with postgres_schema("extractor") as url:
        async for stack in _stack({**options, "store_url": url, "bus_url": f"kafka://{servers}"}):
            yield stack


async def _stack(options: dict[str, Any]) -> AsyncIterator[Stack]:
    runtime = await Runtime.open(**options)
    tmp_path = options["data_dir"]
    service = runtime.extractor
    assert service is not None
    sources = GatedSources(service.sources)
    service.sources = sources
    vectors = runtime.adapters.vectors
    assert isinstance(vectors, EdgeVectorStore)
    _, key = await runtime.catalog.bootstrap(f"org-{uuid.uuid4().hex[:6]}")
    transport = httpx.ASGITransport(app=runtime.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://offshoot.test") as http:
        yield Stack(runtime, service, vectors, sources, http, key.api_key, tmp_path)
    sources.open.set()
    await runtime.close()
