"""Shared steps of the distributed tests: a SciFact bucket and collection through the SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from offshoot.client import Client, Record
from offshoot.demo import papers, scifact


def ingest(client: Client, count: int) -> tuple[Record, Record, list[str]]:
    """A bucket of ``count`` SciFact abstracts and a minilm-static collection over it; returns
    the bucket, the collection and the object ids."""
    bucket, collection = papers(client)
    rows = list(scifact(count))
    object_ids: list[str] = []
    for start in range(0, len(rows), 100):
        created = client.objects.create_batch(
            bucket.bucket_id, [{"fields": row} for row in rows[start : start + 100]]
        )
        object_ids += [o["object_id"] for o in created["results"]]
    return bucket, collection, object_ids


def documents(client: Client, collection_id: str) -> list[dict[str, Any]]:
    """Every current document of the collection (all pages)."""
    found: list[dict[str, Any]] = []
    while True:
        page = client.documents.list(collection_id, limit=1000, offset=len(found))
        found += page.results
        if not page.has_more:
            return found


def wait_until(
    check: Callable[[], Any], what: str, *, timeout: float = 180.0, interval: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


async def fetch_value(store_url: str, schema: str, sql: str, *args: Any) -> Any:
    """The first column of the first row of ``sql`` in one service's store (``schema``: the
    service's schema suffix, "" for the catalog's), through a store opened for this query."""
    from libs.eventstore import open_event_store
    from offshoot.runtime import _schema_url

    store = await open_event_store(_schema_url(store_url, schema) if schema else store_url)
    try:
        async with store.transaction() as tx:
            return await tx.fetchval(sql, *args)
    finally:
        await store.close()


async def current_documents(store_url: str, collection_id: str) -> list[str]:
    """The root object id of every current document row of the collection's active generation,
    read from the extractor's read model in PostgreSQL (no vector store involved), one entry per
    row: a duplicate document shows up as a repeated id."""
    from libs.eventstore import open_event_store
    from offshoot.runtime import _schema_url

    store = await open_event_store(_schema_url(store_url, "extractor"))
    try:
        async with store.transaction() as tx:
            exists = await tx.fetchval("SELECT to_regclass('ext_collections') IS NOT NULL")
            if not exists:
                return []
            rows = await tx.fetch(
                "SELECT d.root_object_id FROM ext_documents d JOIN ext_collections c "
                "ON d.owner = (c.body::json ->> 'owner') WHERE c.collection_id = $1 "
                "AND NOT c.deleted AND d.died IS NULL AND NOT d.deleted",
                collection_id,
            )
    finally:
        await store.close()
    return [str(r["root_object_id"]) for r in rows]


async def wait_for(check: Callable[[], Any], what: str, *, timeout: float = 180.0) -> Any:  # noqa: ASYNC109
    """``check`` is a coroutine function; poll it until it returns something truthy."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


SERVICE_SCHEMAS = ("", "extractor", "retrieval", "taxonomy", "evaluation")  # "" = the catalog's


async def stored_events(store_url: str) -> dict[str, tuple[set[str], bool]]:
    """Per service store: the ids of every stored event, and whether its outbox relay has
    published up to the head (checkpoint ``outbox:offshoot.events`` = last position)."""
    from libs.eventstore import open_event_store
    from offshoot.runtime import _schema_url

    found: dict[str, tuple[set[str], bool]] = {}
    for suffix in SERVICE_SCHEMAS:
        store = await open_event_store(_schema_url(store_url, suffix) if suffix else store_url)
        try:
            async with store.transaction() as tx:
                ids = {str(r["event_id"]) for r in await tx.fetch("SELECT event_id FROM events")}
            head = await store.head_position()
            drained = await store.load_checkpoint("outbox:offshoot.events") >= head
        finally:
            await store.close()
        found[suffix or "catalog"] = (ids, drained)
    return found


async def published_events(servers: str, topic: str) -> list[str]:
    """The ``event_id`` of every message on ``topic`` (all partitions, start to end), repeats
    included: the outbox publishes at least once."""
    return [str(message["event_id"]) for message in await topic_messages(servers, topic)]


async def topic_messages(servers: str, topic: str) -> list[dict[str, Any]]:
    """Every message on ``topic`` (all partitions, start to end), each a JSON object."""
    import json

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from offshoot.roles import topic_partitions

    partitions = [TopicPartition(topic, p) for p in await topic_partitions(servers, topic)]
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        messages: list[dict[str, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                messages += [json.loads(record.value) for record in records]
        return messages
    finally:
        await stop_consumer(consumer)


async def stop_consumer(consumer: Any) -> None:
    """``AIOKafkaConsumer.stop``, except that aiokafka 0.14 lets the CancelledError of its own
    internal task escape from ``stop`` after a manual ``assign``: swallow that one only."""
    import asyncio
    import contextlib

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        await consumer.stop()
        return
    with contextlib.suppress(asyncio.CancelledError):
        await consumer.stop()
