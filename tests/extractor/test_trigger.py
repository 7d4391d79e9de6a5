"""Triggers: a new generation built in the background, dual writes, an atomic switch, failures
listed and retried, and a re-run of unchanged content that never reaches the model."""

from __future__ import annotations

import asyncio
from typing import Any

from libs.vectors import DenseVector
from tests.extractor.conftest import STATIC, Stack, scifact


async def _setup(stack: Stack, count: int) -> tuple[str, str, str, list[dict[str, Any]]]:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    corpus = scifact(count)
    await stack.objects(ns, bucket, corpus)
    await stack.wait_documents(ns, col, count)
    return ns, bucket, col, corpus


async def _owners_found(stack: Stack, ns: str, col: str, text: str) -> set[str]:
    extractor = stack.service.extractor_for(STATIC)
    (query,) = extractor.embed([text], role="query")
    vector = DenseVector(
        feature_uri=extractor.info.feature_uri, values=tuple(query.values.tolist())
    )
    hits = await stack.vectors.search(view=await stack.view(ns, col), query=vector, top_k=20)
    return {hit.owner for hit in hits}


async def test_trigger_dual_writes_and_switches_atomically(stack: Stack) -> None:
    ns, bucket, col, corpus = await _setup(stack, 40)
    old_owner = (await stack.view(ns, col)).owner

    stack.sources.open.clear()  # hold the trigger before it reads the source
    started = await stack.ok("POST", f"/v1/collections/{col}/trigger", namespace=ns)
    batch_id = started["batch_id"]
    for _ in range(200):
        if (await stack.call("GET", f"/v1/batches/{batch_id}", namespace=ns)).status_code == 200:
            break
        await asyncio.sleep(0.02)
    extra = scifact(5, skip=40)
    await stack.objects(ns, bucket, extra)
    await stack.wait_documents(ns, col, 45)  # the old generation got them...
    found = await stack.service.collection(ns, col)
    assert found is not None and found["pending"] == [f"{col}.{batch_id}"]
    pending = await stack.vectors.get_view(
        space=(await stack.view(ns, col)).space, owner=found["pending"][0]
    )
    assert await stack.vectors.count(view=pending) == 5  # ...and so did the new one
    # Before completion, searches see only the old generation.
    assert await _owners_found(stack, ns, col, corpus[0]["text"]) == {old_owner}

    stack.sources.open.set()
    task = await stack.wait_task(started["task_id"])
    assert task["status"] == "COMPLETED", task
    assert task["result"]["documents_written"] >= 45
    view = await stack.view(ns, col)
    assert view.owner == f"{col}.{batch_id}"
    assert await stack.vectors.count(view=view) == 45
    assert await _owners_found(stack, ns, col, corpus[0]["text"]) == {view.owner}
    docs = await stack.documents(ns, col)
    assert len(docs) == 45 and {d["batch_id"] for d in docs} <= {batch_id, None}


async def test_second_identical_trigger_runs_the_model_zero_times(stack: Stack) -> None:
    ns, _, col, _ = await _setup(stack, 60)
    extractor = stack.service.extractor_for(STATIC)
    first = await stack.ok("POST", f"/v1/collections/{col}/trigger", namespace=ns)
    await stack.wait_task(first["task_id"])
    calls = extractor.stats.calls
    second = await stack.ok("POST", f"/v1/collections/{col}/trigger", namespace=ns)
    task = await stack.wait_task(second["task_id"])
    assert task["status"] == "COMPLETED"
    assert task["result"]["model_calls"] == 0
    assert task["result"]["cache_hit_ratio"] == 1.0
    assert extractor.stats.calls == calls
    assert len(await stack.documents(ns, col)) == 60


async def test_bad_inputs_fail_alone_are_listed_and_retried(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    missing = stack.tmp / "late.txt"
    good = scifact(10)
    objects: list[dict[str, Any]] = [{"fields": row} for row in good] + [
        {"fields": {"_id": "empty", "text": "  "}},
        {"fields": {"_id": "blob"}, "blobs": [{"property": "text", "path": str(missing)}]},
    ]
    ids = await stack.objects(ns, bucket, objects)
    await stack.wait_documents(ns, col, 10)  # live ingestion: the two failed alone

    started = await stack.ok("POST", f"/v1/collections/{col}/trigger", namespace=ns)
    task = await stack.wait_task(started["task_id"])
    assert task["status"] == "COMPLETED_WITH_ERRORS"
    assert task["result"]["failed"] == 2
    batch = await stack.ok("GET", f"/v1/batches/{started['batch_id']}", namespace=ns)
    errors = {f["input_id"]: f["error"] for f in batch["failures"]}
    assert set(errors) == {ids[10], ids[11]}
    assert "empty" in errors[ids[10]] and "unreadable" in errors[ids[11]]
    assert len(await stack.documents(ns, col)) == 10

    missing.write_text("Blobs may arrive after their objects; a retry picks them up.")
    retried = await stack.ok("POST", f"/v1/batches/{started['batch_id']}/retry", namespace=ns)
    assert retried["retried"] == 2
    assert [f["input_id"] for f in retried["failures"]] == [ids[10]]
    assert retried["status"] == "COMPLETED_WITH_ERRORS"
    docs = await stack.documents(ns, col)
    assert len(docs) == 11 and ids[11] in {d["root_object_id"] for d in docs}
