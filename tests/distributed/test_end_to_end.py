"""The demo story's first steps with every service in a process of its own (catalog, extractor,
retrieval, gateway; taxonomy and evaluation share one) on real Kafka and PostgreSQL, driven only
through the SDK over HTTP. Every clone participant must run: the clone saga waits for each.

Qdrant Edge (the vector store without a server) opens its shards in one process at a time, so
the extractor, which writes the vectors, is stopped (gracefully) before the gateway searches
them; with a Qdrant server (``OFFSHOOT_QDRANT_URL``) every process shares it at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from offshoot.client import Client
from offshoot.demo import QUERY_SCHEMA, scifact
from tests.distributed.conftest import current_documents, documents, ingest, wait_for
from tests.distributed.harness import cluster

pytestmark = pytest.mark.integration

OBJECTS = 200


async def test_ingest_clone_and_search_with_one_process_per_service(tmp_path: Path) -> None:
    async with cluster(tmp_path, "e2e") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(
            *(deployment.start(r) for r in ("catalog", "extractor", "retrieval")),
            deployment.start("analysis", "taxonomy,evaluation"),
        )
        gateway = await deployment.start("gateway")
        client = Client(gateway.url, key)
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        _, collection, object_ids = ingest(prod, OBJECTS)
        assert len(object_ids) == OBJECTS

        async def all_documents() -> bool:
            return len(await current_documents(deployment.store_url, collection_id)) == OBJECTS

        collection_id = collection.collection_id
        await wait_for(all_documents, f"{OBJECTS} documents")
        assert sorted(await current_documents(deployment.store_url, collection_id)) == sorted(
            object_ids
        )

        task = client.namespaces.clone("prod", {"namespace_name": "staging"})
        done = await asyncio.to_thread(client.tasks.wait, task.task_id, timeout=120)
        assert done.status == "COMPLETED", done
        cloned = done.result["mapping"][collection_id]

        # Edge: one process at a time holds the vectors; the gateway reads them from here on
        assert await deployment.terminate("extractor") == 0
        found = documents(prod, collection_id)
        assert sorted(d["root_object_id"] for d in found) == sorted(object_ids)
        assert len(documents(client.with_namespace("staging"), cloned)) == OBJECTS
        retriever = prod.retrievers.create(
            "static-dense", collection_identifiers=[collection.collection_id],
            stages=[{
                "stage_name": "dense", "stage_type": "filter",
                "config": {"stage_id": "feature_search", "parameters": {
                    "searches": [{"feature_uri": collection.feature_uri,
                                  "query": "{{INPUT.query}}", "top_k": 10}],
                    "final_top_k": 10,
                }},
            }],
            input_schema=QUERY_SCHEMA,
        )  # fmt: skip
        title = next(scifact(1))["title"]
        answer = prod.retrievers.execute(retriever.retriever_id, inputs={"query": title})
        assert len(answer.results) == 10
