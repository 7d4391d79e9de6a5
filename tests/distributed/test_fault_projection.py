"""Faults with real processes: a read model replayed from position 0 while traffic continues.

The catalog's read models (namespaces, tasks; buckets, collections, objects) and the
extractor's (collections, documents, batches) are rebuilt from the live event stores into fresh
PostgreSQL schemas while objects are still being created through the gateway and embedded by
the extractor. Once the traffic has stopped and both runners have caught up, the rebuilt tables
hold exactly the rows of the live ones: nothing the live runners (in other processes) did is
missing from a replay of the events, and nothing in the read models comes from outside them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import pytest

from libs.eventstore import EventStore, ProjectionRunner, open_event_store
from offshoot.client import Client
from offshoot.demo import papers, scifact
from offshoot.runtime import _schema_url
from services.catalog.readmodel import CatalogProjection
from services.catalog.resources_readmodel import ResourcesProjection
from services.extractor.readmodel import ExtractorProjection
from tests.distributed.conftest import current_documents, wait_for
from tests.distributed.harness import cluster

pytestmark = pytest.mark.integration

BATCHES = 12  # of 25 objects, sent one after the other while the rebuild runs
PER_BATCH = 25
Rebuildable = CatalogProjection | ResourcesProjection | ExtractorProjection


async def test_a_projection_replayed_from_zero_under_traffic_equals_the_live_one(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "rebuild") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(*(deployment.start(r) for r in ("catalog", "extractor", "gateway")))
        client = Client(deployment.processes["gateway"].url, key)
        client.namespaces.create("prod")
        prod = client.with_namespace("prod")
        bucket, collection = papers(prod)
        rows = list(scifact(BATCHES * PER_BATCH))
        sent: list[str] = []
        stop = threading.Event()

        def traffic() -> None:
            for start in range(0, len(rows), PER_BATCH):
                if stop.is_set():
                    return
                created = prod.objects.create_batch(
                    bucket.bucket_id, [{"fields": r} for r in rows[start : start + PER_BATCH]]
                )
                sent.extend(o["object_id"] for o in created["results"])
                stop.wait(0.2)  # a steady stream, not one burst

        async def every_document() -> bool:
            found = await current_documents(deployment.store_url, collection.collection_id)
            return len(found) >= len(sent)

        compared: dict[str, int] = {}  # rows per table, rebuilt = live
        sender = asyncio.create_task(asyncio.to_thread(traffic))
        try:
            await wait_for(_true_when(lambda: len(sent) >= 2 * PER_BATCH), "traffic", timeout=60)
            async with (
                _rebuilt(deployment.store_url, "", CatalogProjection, ResourcesProjection) as cat,
                _rebuilt(deployment.store_url, "extractor", ExtractorProjection) as ext,
            ):
                runners = [*cat.runners, *ext.runners]
                assert len(sent) < BATCHES * PER_BATCH  # the traffic goes on meanwhile
                for runner in runners:
                    assert await runner.rebuild() > 0  # cleared, then every event from 0
                following = asyncio.Event()  # then they follow the live stores, as live ones do
                tasks = [asyncio.create_task(runner.run(following)) for runner in runners]
                try:
                    await sender
                    assert len(sent) == BATCHES * PER_BATCH
                    await wait_for(every_document, f"{len(sent)} documents")
                    for rebuild in (cat, ext):
                        await wait_for(rebuild.live_caught_up, f"{rebuild.label}: live models")
                finally:
                    following.set()
                    await asyncio.gather(*tasks)
                for rebuild in (cat, ext):
                    for runner in rebuild.runners:
                        await runner.catch_up()
                    for table in rebuild.tables:
                        live, replayed = await rebuild.rows(table)
                        assert replayed == live, f"{table}: the rebuilt rows differ"
                        compared[table] = len(live)
            # every object once in the catalog, and one current document per object
            assert compared["cat_objects"] == len(sent), compared
            documents = await current_documents(deployment.store_url, collection.collection_id)
            assert sorted(documents) == sorted(sent)
            assert compared["cat_namespaces"] == 1 and compared["ext_collections"] == 1, compared
        finally:
            stop.set()
            await asyncio.gather(sender, return_exceptions=True)


def _true_when(check: Any) -> Any:
    async def poll() -> bool:
        return bool(check())

    return poll


class _Rebuild:
    """Runners folding a live store's events into a fresh schema, and the two sides' rows."""

    def __init__(
        self, label: str, live: EventStore, fresh: EventStore, projections: list[Rebuildable]
    ) -> None:
        self.label = label
        self.live = live
        self.fresh = fresh
        self.projections = projections
        self.runners = [ProjectionRunner(fresh, p, batch_size=50, source=live) for p in projections]
        self.tables = [table for p in projections for table in p.tables]

    async def live_caught_up(self) -> bool:
        head = await self.live.head_position()
        for projection in self.projections:
            if await self.live.load_checkpoint(f"projection:{projection.name}") < head:
                return False
        return True

    async def rows(self, table: str) -> tuple[list[str], list[str]]:
        """Every row of ``table`` in the live and the rebuilt schema, in one canonical order."""
        found: list[list[str]] = []
        for store in (self.live, self.fresh):
            async with store.transaction() as tx:
                fetched = await tx.fetch(f"SELECT * FROM {table}")
            found.append(sorted(_canonical(row) for row in fetched))
        return found[0], found[1]


def _canonical(row: Mapping[str, Any]) -> str:
    return repr(sorted((name, repr(value)) for name, value in row.items()))


@asynccontextmanager
async def _rebuilt(
    store_url: str, suffix: str, *projections: type[Rebuildable]
) -> AsyncIterator[_Rebuild]:
    """The service store at ``store_url`` (``suffix``: another service's schema beside it) and a
    fresh schema for the rebuilt read model, dropped afterwards."""
    live_url = _schema_url(store_url, suffix) if suffix else store_url
    fresh_url = _schema_url(live_url, "rebuild")
    live = await open_event_store(live_url)
    fresh = await open_event_store(fresh_url)
    try:
        yield _Rebuild(suffix or "catalog", live, fresh, [p() for p in projections])
    finally:
        await fresh.close()
        await live.close()
        await _drop_schema(fresh_url)


async def _drop_schema(url: str) -> None:
    parts = urlsplit(url)
    schema = dict(parse_qsl(parts.query))["schema"]
    connection = await asyncpg.connect(parts._replace(query="").geturl())
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()
