"""Fault: the catalog is killed (SIGKILL) in the middle of a namespace clone saga.

A clone is a saga: the gateway forks the namespace's stream and records it CLONING; every
participant (extractor, retrieval, taxonomy, evaluation) forks its own state and acknowledges
over Kafka; the catalog role folds the acknowledgements and, at the last one, activates the
namespace and finishes the task. To kill it at a known point of the saga, the evaluation
participant runs in a process of its own that is started only after the kill: the catalog has
then folded three acknowledgements of four and waits for the last.

While the catalog is down the clone stays invisible (404, not listed) even once every
participant has acknowledged; after the restart the catalog reads the acknowledgements it had
not committed and the clone completes, with every document of the source.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from libs.errors import NotFoundError
from offshoot.client import Client
from tests.distributed.conftest import (
    SERVICE_SCHEMAS,
    current_documents,
    documents,
    fetch_value,
    ingest,
    wait_for,
)
from tests.distributed.harness import cluster

pytestmark = pytest.mark.integration

OBJECTS = 100
ACK = "namespace.fork_acknowledged"
UNFINISHED = ("PENDING", "RUNNING")


async def test_killing_the_catalog_mid_clone_then_restarting_completes_the_clone(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "clone") as deployment:
        key = await deployment.bootstrap()
        await asyncio.gather(
            deployment.start("catalog"),
            deployment.start("gateway"),
            deployment.start("workers", "extractor,retrieval,taxonomy"),
        )
        client = Client(deployment.processes["gateway"].url, key)
        client.namespaces.create("prod")
        _, collection, object_ids = ingest(client.with_namespace("prod"), OBJECTS)

        async def all_documents() -> bool:
            found = await current_documents(deployment.store_url, collection.collection_id)
            return len(found) == OBJECTS

        await wait_for(all_documents, f"{OBJECTS} documents", timeout=120)

        task = client.namespaces.clone("prod", {"namespace_name": "staging"})
        clone_id = task.resource_id

        async def awaiting_only_evaluation() -> bool:
            return await _awaiting(deployment.store_url, clone_id) == ["evaluation"]

        await wait_for(awaiting_only_evaluation, "three acknowledgements of four", timeout=60)
        await deployment.kill("catalog")  # mid-saga
        assert client.tasks.get(task.task_id).status in UNFINISHED
        _assert_invisible(client)

        await deployment.start("evaluation")  # the last participant acknowledges ...

        async def every_participant_acknowledged() -> bool:
            return await _acknowledgements(deployment.store_url, clone_id) == 4

        await wait_for(every_participant_acknowledged, "four acknowledgements", timeout=60)
        await asyncio.sleep(1)
        assert client.tasks.get(task.task_id).status in UNFINISHED  # ... nobody folds it
        _assert_invisible(client)

        await deployment.restart("catalog")
        done = await asyncio.to_thread(client.tasks.wait, task.task_id, timeout=60)
        assert done.status == "COMPLETED", done
        assert client.namespaces.get("staging").namespace_id == clone_id
        cloned = done.result["mapping"][collection.collection_id]
        # the clone's documents are the source's view forked in the vector store: read them
        # through the gateway once the extractor has released the vectors (Qdrant Edge)
        assert await deployment.terminate("workers") == 0
        rows = [d["root_object_id"] for d in documents(client.with_namespace("staging"), cloned)]
        assert sorted(rows) == sorted(object_ids)  # the clone holds exactly the source's


def _assert_invisible(client: Client) -> None:
    with pytest.raises(NotFoundError):  # 404
        client.namespaces.get("staging")
    assert "staging" not in {n.namespace_name for n in client.namespaces.list()}


async def _awaiting(store_url: str, namespace_id: str) -> list[str] | None:
    """The participants the catalog still waits for (None before the fork is recorded)."""
    awaiting = await fetch_value(
        store_url, "", "SELECT awaiting FROM cat_namespaces WHERE namespace_id = $1", namespace_id
    )
    return None if awaiting is None else sorted(json.loads(awaiting))


async def _acknowledgements(store_url: str, namespace_id: str) -> int:
    """Acknowledgements of the clone stored by the participants (each in its own store)."""
    total = 0
    for schema in SERVICE_SCHEMAS[1:]:
        total += await fetch_value(
            store_url, schema,
            "SELECT count(*) FROM events WHERE type = $1 AND data ->> 'namespace_id' = $2",
            ACK, namespace_id,
        )  # fmt: skip
    return total
