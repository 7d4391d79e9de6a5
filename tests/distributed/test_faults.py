"""Faults with real processes: SIGKILL the extractor in the middle of a batch and restart it."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from libs.vectors import EdgeVectorStore
from offshoot.client import Client
from services.extractor.service import space_spec
from tests.distributed.conftest import current_documents, fetch_value, ingest, wait_for
from tests.distributed.harness import cluster

pytestmark = pytest.mark.integration

OBJECTS = 500


async def test_killing_the_extractor_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "kill") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(*(deployment.start(r) for r in ("catalog", "extractor", "gateway")))
        client = Client(deployment.processes["gateway"].url, key)
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        _, collection, object_ids = ingest(prod, OBJECTS)
        collection_id = collection.collection_id

        async def some_but_not_all() -> bool:
            done = len(await current_documents(deployment.store_url, collection_id))
            return 0 < done < OBJECTS

        await wait_for(some_but_not_all, "the batch to be under way", timeout=120)
        await deployment.kill("extractor")
        at_kill = len(await current_documents(deployment.store_url, collection_id))
        assert 0 < at_kill < OBJECTS

        await deployment.restart("extractor")

        async def complete() -> bool:
            return len(await current_documents(deployment.store_url, collection_id)) >= OBJECTS

        await wait_for(complete, f"{OBJECTS} documents after the restart")
        await asyncio.sleep(2)  # anything duplicated late would show up now
        rows = await current_documents(deployment.store_url, collection_id)
        assert Counter(rows) == Counter(object_ids)  # exactly one current document per object

        deployment.close()  # release the vectors (Edge: one process at a time)
        vectors = EdgeVectorStore(tmp_path / "vectors", optimize_idle_seconds=None)
        try:
            body = await _collection_body(deployment.store_url, collection_id)
            view = await vectors.get_view(space=space_spec(body["space"]), owner=body["owner"])
            assert await vectors.count(view=view) == OBJECTS
        finally:
            await vectors.close()


async def _collection_body(store_url: str, collection_id: str) -> dict[str, Any]:
    import json

    body = await fetch_value(
        store_url, "extractor", "SELECT body FROM ext_collections WHERE collection_id = $1",
        collection_id,
    )  # fmt: skip
    parsed: dict[str, Any] = json.loads(body)
    return parsed
