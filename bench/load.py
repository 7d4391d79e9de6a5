"""Distributed load: the stack as one process per role on Kafka + PostgreSQL, under concurrent
clients on loopback, for a bounded time.

The processes are those of ``make up`` (``offshoot.stack.layout``: with Qdrant Edge the roles
that touch vectors share one process), launched by the distributed tests' harness in a fresh
PostgreSQL schema and topic prefix of their own. ``--clients`` writers create one object per
request over HTTP; ``--query-clients`` execute a minilm-static@v1 retriever over the same
collection meanwhile. Printed:

- commands/s: object creates the gateway accepted (2xx) per second of the load window;
- command → event latency p50/p99: from sending the create to the ``recorded_at`` of the
  extractor's event that made the object's document (the ``born`` position of its row);
- query latency p50/p99 under that ingestion (HTTP round trip, results counted);
- consumer lag per group at the end (end offsets minus committed), waited on until it is 0.

    .venv/bin/python -m bench.load --seconds 60 --clients 4   # from the repository root
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from libs.eventstore import open_event_store
from offshoot.client import Client
from offshoot.demo import papers, scifact
from offshoot.roles import consumer_lag
from offshoot.runtime import _schema_url
from offshoot.stack import layout
from tests.distributed.harness import Cluster, cluster

SEED = 200  # objects ingested before the load, so the first queries find something
GROUPS = {  # consumer group → the topic it reads
    "catalog": "offshoot.events",
    "catalog-commands": "offshoot.commands",
    "extractor": "offshoot.events",
    "retrieval": "offshoot.events",
    "taxonomy": "offshoot.events",
    "evaluation": "offshoot.events",
    "webhooks": "offshoot.events",
}


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; NaN when there is nothing."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def writer(
    http: httpx.AsyncClient, bucket_id: str, rows: Any, deadline: float, sent: dict[str, float]
) -> int:
    """Create objects one per request until ``deadline``; record each accepted one's send time."""
    errors = 0
    while time.monotonic() < deadline:
        fields = next(rows)
        started = time.time()
        reply = await http.post(f"/v1/buckets/{bucket_id}/objects", json={"fields": fields})
        if reply.is_success:
            sent[reply.json()["object_id"]] = started
        else:
            errors += 1
    return errors


async def querier(
    http: httpx.AsyncClient, retriever_id: str, queries: list[str], deadline: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    for query in itertools.cycle(queries):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        reply = await http.post(
            f"/v1/retrievers/{retriever_id}/execute", json={"inputs": {"query": query}}
        )
        if reply.is_success and reply.json()["results"]:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1
    return latencies, errors


async def documents_born(store_url: str, collection_id: str) -> dict[str, float]:
    """Root object id → epoch seconds at which the extractor stored the event of its current
    document, read from the extractor's read model and event table in PostgreSQL."""
    store = await open_event_store(_schema_url(store_url, "extractor"))
    try:
        async with store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT d.root_object_id, MIN(e.recorded_at) AS at FROM ext_documents d "
                "JOIN ext_collections c ON d.owner = (c.body::json ->> 'owner') "
                "JOIN events e ON e.global_position = d.born "
                "WHERE c.collection_id = $1 AND d.died IS NULL AND NOT d.deleted "
                "GROUP BY d.root_object_id",
                collection_id,
            )
    finally:
        await store.close()
    return {str(r["root_object_id"]): r["at"].timestamp() for r in rows}


async def lags(deployment: Cluster) -> dict[str, int]:
    prefix = deployment.prefix
    return {
        group: await consumer_lag(deployment.kafka, f"{prefix}{group}", f"{prefix}{topic}")
        for group, topic in GROUPS.items()
    }


async def run(args: argparse.Namespace, tmp: Path) -> bool:
    """Run the load and print the figures; False when something did not drain."""
    async with cluster(tmp, "load") as deployment:
        key = await deployment.bootstrap()
        processes = layout(os.environ.get("OFFSHOOT_QDRANT_URL"))
        await asyncio.gather(*(deployment.start(n, r) for n, r in processes.items()))
        print("processes:", ", ".join(f"{n} [{r}]" for n, r in processes.items()))
        gateway = deployment.processes["gateway"].url

        sdk = Client(gateway, key)
        sdk.namespaces.create("load")
        ns = sdk.with_namespace("load")
        bucket, collection = papers(ns)
        corpus = list(scifact(100_000))  # SciFact has 5,183; cycled with a unique _id
        seed = [{"fields": row} for row in corpus[:SEED]]
        ns.objects.create_batch(bucket.bucket_id, seed)
        retriever = ns.retrievers.create(
            "static-dense",
            collection_identifiers=[collection.collection_id],
            stages=[{
                "stage_name": "dense", "stage_type": "filter",
                "config": {"stage_id": "feature_search", "parameters": {"searches": [
                    {"feature_uri": collection.feature_uri, "query": "{{INPUT.query}}",
                     "top_k": 10},
                ]}},
            }],
        )  # fmt: skip
        for _ in range(600):  # the seed embedded (bounded: 5 min)
            if len(await documents_born(deployment.store_url, collection.collection_id)) >= SEED:
                break
            await asyncio.sleep(0.5)

        counter = itertools.count()
        rows = ({**row, "_id": f"{row['_id']}-{next(counter)}"} for row in itertools.cycle(corpus))
        queries = [str(row["title"]) for row in corpus[:500]]
        sent: dict[str, float] = {}
        headers = {"Authorization": f"Bearer {key}", "X-Namespace": "load"}
        limits = httpx.Limits(max_connections=args.clients + args.query_clients)
        async with httpx.AsyncClient(
            base_url=gateway, headers=headers, timeout=60.0, limits=limits
        ) as http:
            started = time.monotonic()
            deadline = started + args.seconds
            results = await asyncio.gather(
                *(
                    writer(http, bucket.bucket_id, rows, deadline, sent)
                    for _ in range(args.clients)
                ),
                *(
                    querier(http, retriever.retriever_id, queries, deadline)
                    for _ in range(args.query_clients)
                ),
            )
            window = time.monotonic() - started
        write_errors = sum(r for r in results[: args.clients] if isinstance(r, int))
        query_results = [r for r in results[args.clients :] if isinstance(r, tuple)]
        query_latencies = [v for latencies, _ in query_results for v in latencies]
        query_errors = sum(errors for _, errors in query_results)

        drain_started = time.monotonic()
        born: dict[str, float] = {}
        while time.monotonic() - drain_started < args.drain_timeout:
            born = await documents_born(deployment.store_url, collection.collection_id)
            if all(object_id in born for object_id in sent):
                break
            await asyncio.sleep(0.5)
        documents_drained = time.monotonic() - drain_started
        missing = [object_id for object_id in sent if object_id not in born]
        latencies = [born[o] - at for o, at in sent.items() if o in born]

        lag: dict[str, int] = {}
        while time.monotonic() - drain_started < args.drain_timeout:
            lag = await lags(deployment)
            if not any(lag.values()):
                break
            await asyncio.sleep(1.0)
        lag_drained = time.monotonic() - drain_started

    ms = 1000.0
    print(f"load window: {window:.1f} s, {args.clients} writers, {args.query_clients} queriers")
    print(
        f"commands accepted: {len(sent)} object creates, {len(sent) / window:.1f}/s "
        f"({write_errors} refused or failed)"
    )
    print(
        f"command -> event (document stored by the extractor): p50 "
        f"{percentile(latencies, 50) * ms:.0f} ms, p99 {percentile(latencies, 99) * ms:.0f} ms, "
        f"max {max(latencies, default=float('nan')) * ms:.0f} ms over {len(latencies)} objects; "
        f"all documents present {documents_drained:.1f} s after the load"
        + (f"; MISSING {len(missing)}" if missing else "")
    )
    print(
        f"queries under ingestion: {len(query_latencies)} ({len(query_latencies) / window:.1f}/s), "
        f"p50 {percentile(query_latencies, 50) * ms:.1f} ms, "
        f"p99 {percentile(query_latencies, 99) * ms:.1f} ms ({query_errors} failed or empty)"
    )
    print(
        f"consumer lag at the end ({lag_drained:.1f} s after the load): "
        + ", ".join(f"{group} {value}" for group, value in lag.items())
    )
    return not missing and not any(lag.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load window")
    parser.add_argument("--clients", type=int, default=4, help="concurrent object writers")
    parser.add_argument("--query-clients", type=int, default=1, help="concurrent queriers")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="after the load")
    args = parser.parse_args()
    for variable in ("OFFSHOOT_DATABASE_URL", "OFFSHOOT_KAFKA"):
        if not os.environ.get(variable):
            parser.error(f"{variable} is not set: start Kafka and PostgreSQL with `make up`")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="offshoot-load-") as tmp:
        drained = asyncio.run(run(args, Path(tmp)))
    sys.exit(0 if drained else 1)


if __name__ == "__main__":
    main()
