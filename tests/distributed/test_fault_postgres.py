"""Fault: PostgreSQL crashes (``pg_ctl stop -m immediate``: every backend killed, no checkpoint)
while the gateway handles a stream of commands, and comes back.

A dedicated cluster (``tests/distributed/servers.py``), so the shared one stays up for every
other test. Each command writes a batch of objects; a batch is one append, so it is stored
whole or not at all. Afterwards: every command that reported success is fully applied, a
command that reported failure is applied wholly or not at all (never some of its objects), the
objects in the bucket are exactly those of the applied batches, one ``object.stored`` event
each, and every outbox drains: what is stored is what is published.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from offshoot.client import Client
from offshoot.demo import SCHEMA, scifact
from tests.distributed.conftest import fetch_value, published_events, stored_events, wait_for
from tests.distributed.harness import cluster
from tests.distributed.servers import postgres
from tests.infra import database_url, kafka_servers

pytestmark = pytest.mark.integration

BATCHES = 40
PER_BATCH = 10


async def test_a_postgres_crash_during_commands_leaves_nothing_half_applied(
    tmp_path: Path,
) -> None:
    database_url(), kafka_servers()  # an integration run (make test), else skipped
    async with (
        postgres() as database,
        cluster(tmp_path, "pgrt", store_url=database.url) as deployment,
    ):
        key = await deployment.bootstrap()
        await asyncio.gather(deployment.start("catalog"), deployment.start("gateway"))
        client = Client(deployment.processes["gateway"].url, key, timeout=20.0)
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        bucket = prod.buckets.create("papers", bucket_schema=SCHEMA, unique_key="_id")
        rows = list(scifact(BATCHES * PER_BATCH))
        batches = [rows[i : i + PER_BATCH] for i in range(0, len(rows), PER_BATCH)]
        outcomes: list[str] = []  # per batch: "ok" or the error the client got
        started, restarted = threading.Event(), threading.Event()

        def send() -> None:
            for number, batch in enumerate(batches):
                if number == 5:
                    started.set()
                if number == BATCHES - 5:  # the last ones once the database is back
                    restarted.wait(120)
                try:
                    created = prod.objects.create_batch(
                        bucket.bucket_id, [{"fields": row} for row in batch]
                    )
                    assert len(created["results"]) == PER_BATCH, created
                    outcomes.append("ok")
                except Exception as error:  # the command reported failure
                    outcomes.append(f"{type(error).__name__}: {error}")

        sender = asyncio.create_task(asyncio.to_thread(send))
        await asyncio.to_thread(started.wait, 120)
        await database.stop("immediate")  # a crash, as far as every client can tell
        await asyncio.sleep(2)
        await database.start()
        restarted.set()
        await sender
        assert len(outcomes) == BATCHES

        found = Counter(str(o["fields"]["_id"]) for o in await _objects(prod, bucket.bucket_id))
        assert max(found.values()) == 1  # no object twice
        applied = 0
        for batch, outcome in zip(batches, outcomes, strict=True):
            present = sum(found[str(row["_id"])] for row in batch)
            if outcome == "ok":
                assert present == PER_BATCH, outcome  # success means fully applied
            else:
                assert present in (0, PER_BATCH), outcome  # never half-applied
            applied += present // PER_BATCH
        assert sum(found.values()) == applied * PER_BATCH
        assert outcomes[-5:] == ["ok"] * 5  # commands are accepted again after the restart

        async def drained() -> bool:
            return all(done for _, done in (await stored_events(deployment.store_url)).values())

        await wait_for(drained, "every outbox to drain", timeout=60)
        stored = await stored_events(deployment.store_url)
        catalog_ids = stored["catalog"][0]
        assert await _count_stored(deployment.store_url, "object.stored") == sum(found.values())
        published = await published_events(deployment.kafka, f"{deployment.prefix}offshoot.events")
        assert set(published) == set().union(*(ids for ids, _ in stored.values()))
        assert catalog_ids <= set(published)


async def _objects(client: Client, bucket_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = await asyncio.to_thread(client.objects.list, bucket_id, limit=100, offset=len(found))
        found += page["results"]
        if not page["has_more"]:
            return found


async def _count_stored(store_url: str, event_type: str) -> int:
    count = await fetch_value(
        store_url, "", "SELECT count(*) FROM events WHERE type = $1", event_type
    )
    return int(count)
