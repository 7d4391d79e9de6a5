"""Fault: the Kafka broker dies (SIGKILL) in the middle of ingestion and comes back.

A dedicated broker (``tests/distributed/servers.py``), so the shared one stays up for every
other test. While it is down, the gateway still accepts objects (they are stored in PostgreSQL;
the outbox holds them), and the extractor's consumer and every relay's producer lose their
connection. After the restart: every object has exactly one document, every stored event of
every service has been published (at least once: the outbox may repeat a tail), and nothing
was published that was not stored.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from offshoot.client import Client
from offshoot.demo import scifact
from tests.distributed.conftest import (
    current_documents,
    ingest,
    published_events,
    stored_events,
    wait_for,
)
from tests.distributed.harness import cluster
from tests.distributed.servers import kafka
from tests.infra import database_url, kafka_servers

pytestmark = pytest.mark.integration

BEFORE = 200  # objects written while the broker is up
DURING = 100  # objects written while it is down


async def test_a_kafka_restart_during_ingestion_loses_nothing(tmp_path: Path) -> None:
    database_url(), kafka_servers()  # an integration run (make test), else skipped
    async with (
        kafka(tmp_path / "kafka") as broker,
        cluster(tmp_path, "kafkart", kafka=broker.servers) as deployment,
    ):
        key = await deployment.bootstrap()
        await asyncio.gather(*(deployment.start(r) for r in ("catalog", "extractor", "gateway")))
        client = Client(deployment.processes["gateway"].url, key)
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        bucket, collection, object_ids = ingest(prod, BEFORE)
        collection_id = collection.collection_id

        async def under_way() -> bool:
            return len(await current_documents(deployment.store_url, collection_id)) > 0

        await wait_for(under_way, "the first documents", timeout=120)
        await broker.stop(signal.SIGKILL)

        rows = list(scifact(BEFORE + DURING))[BEFORE:]
        created = await asyncio.to_thread(
            prod.objects.create_batch, bucket.bucket_id, [{"fields": row} for row in rows]
        )
        object_ids += [o["object_id"] for o in created["results"]]
        assert len(object_ids) == BEFORE + DURING
        await asyncio.sleep(3)  # the clients notice, retry, back off
        await broker.start()

        async def complete() -> bool:
            found = len(await current_documents(deployment.store_url, collection_id))
            return found >= BEFORE + DURING

        await wait_for(complete, f"{BEFORE + DURING} documents after the restart", timeout=150)

        async def drained() -> bool:
            return all(done for _, done in (await stored_events(deployment.store_url)).values())

        await wait_for(drained, "every outbox to drain", timeout=60)
        await asyncio.sleep(2)  # a late duplicate would show up now
        documents = await current_documents(deployment.store_url, collection_id)
        assert Counter(documents) == Counter(object_ids)  # exactly one document per object

        stored = set().union(
            *(ids for ids, _ in (await stored_events(deployment.store_url)).values())
        )
        published = await published_events(broker.servers, f"{deployment.prefix}offshoot.events")
        assert set(published) == stored  # every stored event published, nothing else
        assert len(stored) > BEFORE + DURING  # (objects stored, documents written, ...)
