"""Two extractor processes in one consumer group split the ingestion between them.

Events are keyed by namespace, so the unit of work a consumer group distributes is a
namespace's partition: per-namespace order is what the extractor relies on (an object's
replacement after its first version, a chunk claimed before the next), so one namespace's
batch is never processed by two processes at once. "Sharing a batch" therefore means objects
written to several namespaces at once are split between the two processes, each namespace
wholly by one. The namespaces are chosen so that every partition of ``offshoot.events`` gets
one, which makes both members receive work whatever partitions the broker assigned them.

Qdrant Edge opens a vector space's shard in one process at a time, so each extractor keeps its
vectors in a data directory of its own here (with a Qdrant server both would share it). That is
also the per-process counter: after both stop, each directory holds the vectors of the
namespaces its process ingested.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from libs.errors import NotFoundError
from libs.vectors import EdgeVectorStore
from offshoot.client import Client
from offshoot.roles import describe_group, partition_of
from services.extractor.service import space_spec
from tests.distributed.conftest import current_documents, ingest, wait_for
from tests.distributed.harness import cluster
from tests.distributed.test_faults import _collection_body

pytestmark = pytest.mark.integration

PARTITIONS = 4  # offshoot.events, as the runtime creates it
PER_NAMESPACE = 50


async def test_two_extractor_processes_split_the_work_and_the_total_is_exact(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "scale") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(
            deployment.start("catalog"),
            deployment.start("gateway"),
            deployment.start("extractor-a", "extractor", data_dir=tmp_path / "a"),
            deployment.start("extractor-b", "extractor", data_dir=tmp_path / "b"),
        )
        group = f"{deployment.prefix}extractor"
        events = f"{deployment.prefix}offshoot.events"

        async def both_members_assigned() -> bool:
            found = await describe_group(deployment.kafka, group)
            return (
                found.state == "Stable"
                and len(found.members) == 2
                and all(member.get(events) for member in found.members)
            )

        await wait_for(both_members_assigned, "two members sharing the partitions", timeout=60)

        client = Client(deployment.processes["gateway"].url, key)
        by_partition: dict[int, str] = {}
        for attempt in range(64):  # one namespace per partition (≈ 8 tries expected)
            created = client.namespaces.create(f"ns{attempt}")
            by_partition.setdefault(
                partition_of(created.namespace_id, PARTITIONS), created.namespace_name
            )
            if len(by_partition) == PARTITIONS:
                break
        assert len(by_partition) == PARTITIONS

        collections: dict[str, list[str]] = {}
        for name in by_partition.values():
            _, collection, object_ids = ingest(client.with_namespace(name), PER_NAMESPACE)
            collections[collection.collection_id] = object_ids
        total = PER_NAMESPACE * PARTITIONS

        async def all_documents() -> bool:
            counts = [len(await current_documents(deployment.store_url, c)) for c in collections]
            return sum(counts) >= total

        await wait_for(all_documents, f"{total} documents", timeout=150)
        await asyncio.sleep(2)  # a late duplicate would show up now
        for collection_id, object_ids in collections.items():
            rows = await current_documents(deployment.store_url, collection_id)
            assert Counter(rows) == Counter(object_ids)  # exactly one document per object

        # release the vectors, then count what each process wrote
        assert await deployment.terminate("extractor-a") == 0
        assert await deployment.terminate("extractor-b") == 0
        per_process = {"a": 0, "b": 0}
        for collection_id in collections:
            body = await _collection_body(deployment.store_url, collection_id)
            counts = {
                name: await _vectors(tmp_path / name / "vectors", body) for name in per_process
            }
            # a namespace is processed wholly by one process: its order is kept
            assert sorted(counts.values()) == [0, PER_NAMESPACE], (collection_id, counts)
            for name, count in counts.items():
                per_process[name] += count
        assert per_process["a"] > 0 and per_process["b"] > 0, per_process  # both did some
        assert sum(per_process.values()) == total  # and nothing twice


async def _vectors(directory: Path, body: dict[str, Any]) -> int:
    """The collection's vectors in one process's Edge store (0 when it never saw it)."""
    if not directory.exists():  # noqa: ASYNC240 (a stat, in a test)
        return 0
    vectors = EdgeVectorStore(directory, optimize_idle_seconds=None)
    try:
        view = await vectors.get_view(space=space_spec(body["space"]), owner=str(body["owner"]))
        return await vectors.count(view=view)
    except NotFoundError:
        return 0
    finally:
        await vectors.close()
