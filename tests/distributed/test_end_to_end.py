"""The demo story's first steps with every service in a process of its own (catalog, extractor,
retrieval, gateway; taxonomy, evaluation and webhooks share one) on real Kafka and PostgreSQL,
driven from outside only: the SDK over HTTP, a command published straight to Kafka, and a
webhook receiver. Every clone participant must run: the clone saga waits for each.

Qdrant Edge (the vector store without a server) opens its shards in one process at a time, so
the extractor, which writes the vectors, is stopped (gracefully) before the gateway searches
them; with a Qdrant server (``OFFSHOOT_QDRANT_URL``) every process shares it at once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from contracts import topics
from contracts.envelope import Envelope
from libs.bus import Bus, dlq_topic, open_bus, publish_envelope
from offshoot.client import Client
from offshoot.demo import QUERY_SCHEMA, scifact
from tests.distributed.conftest import (
    current_documents,
    documents,
    ingest,
    topic_messages,
    wait_for,
)
from tests.distributed.harness import cluster
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

OBJECTS = 200


async def test_ingest_clone_and_search_with_one_process_per_service(tmp_path: Path) -> None:
    async with cluster(tmp_path, "e2e") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(
            *(deployment.start(r) for r in ("catalog", "extractor", "retrieval")),
            deployment.start("analysis", "taxonomy,evaluation,webhooks"),
        )
        gateway = await deployment.start("gateway")
        client = Client(gateway.url, key)
        receiver = Receiver(secrets={"main": "e2e-secret-0123456789"})
        await receiver.start()
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        prod.webhooks.create(receiver.url(), ["alias.*"], secret="e2e-secret-0123456789")
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
        # the alias comes from an outside producer on Kafka, after a malformed message and an
        # unauthenticated command that must be dead-lettered without stopping the consumer;
        # the webhook tells the receiver
        command = {"alias_name": "search", "retriever_id": retriever.retriever_id}
        namespace_id = client.namespaces.get("prod").namespace_id
        bus = open_bus(f"kafka://{deployment.kafka}?prefix={deployment.prefix}")
        await bus.start()
        try:
            await bus.publish(topics.COMMANDS, b"{not json", key=namespace_id)
            await _send_command(bus, "osk.key_00000000000000000000.x", "alias.create", command,
                                namespace_id)  # fmt: skip
            await _send_command(bus, key, "alias.create", command, namespace_id)
        finally:
            await bus.stop()

        async def created_and_announced() -> bool:
            hits = [h for h in receiver.at() if h.payload.get("type") == "alias.created"]
            return bool(hits) and all(h.verified for h in hits)

        await wait_for(created_and_announced, "the alias created over Kafka, and its webhook")
        await receiver.stop()
        assert prod.aliases.get("search").retriever_id == retriever.retriever_id
        letters = await topic_messages(
            deployment.kafka, f"{deployment.prefix}{dlq_topic(topics.COMMANDS)}"
        )
        reasons = sorted(letter["reason"] for letter in letters)
        assert len(reasons) == 2, reasons
        assert any("invalid API key" in reason for reason in reasons), reasons
        title = next(scifact(1))["title"]
        answer = prod.aliases.execute("search", inputs={"query": title})
        assert answer.served_by == retriever.retriever_id
        assert len(answer.results) == 10


async def _send_command(
    bus: Bus, key: str, command_type: str, command: dict[str, Any], namespace: str
) -> None:
    """Publish ``command`` on ``offshoot.commands`` as an outside producer would."""
    envelope = Envelope(
        event_id=uuid.uuid4(), type=command_type, stream_id="commands", version=1,
        namespace_id=namespace, data={"api_key": key, "command": command},
    )  # fmt: skip
    await publish_envelope(bus, topics.COMMANDS, envelope)
