"""Tier-N lineage across three collections, and namespace clones that fork vectors in O(1)."""

from __future__ import annotations

import asyncio

from libs.ids import derive
from libs.vectors import DenseVector
from tests.extractor.conftest import STATIC, Stack, scifact


async def test_lineage_across_three_tiers(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    tier1 = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    chunked = {**STATIC, "parameters": {"chunking": {"mode": "sentences", "size": 2, "overlap": 0}}}
    tier2 = await stack.collection(ns, {"type": "collection", "collection_id": tier1}, chunked)
    tier3 = await stack.collection(ns, {"type": "collection", "collection_id": tier2})
    ids = await stack.objects(ns, bucket, scifact(3))
    await stack.wait_documents(ns, tier1, 3)
    second = await stack.documents(ns, tier2)
    for _ in range(200):
        second = await stack.documents(ns, tier2)
        third = await stack.documents(ns, tier3)
        # Tier 1 becomes visible before the cascade to tiers 2 and 3 is written: wait for all.
        if {d["root_object_id"] for d in third} == set(ids) and len(third) == len(second):
            break
        await asyncio.sleep(0.02)
    assert len(second) > 3  # sentences: more documents than objects
    assert {d["root_object_id"] for d in third} == set(ids)
    doc = third[0]
    assert doc["lineage_path"] == [bucket, tier1, tier2, tier3]
    assert doc["source_collection_id"] == tier2
    lineage = await stack.ok("GET", f"/v1/documents/{doc['document_id']}/lineage", namespace=ns)
    assert [step["collection_id"] for step in lineage["chain"]] == [tier3, tier2, tier1]
    assert lineage["root_object_id"] == doc["root_object_id"]

    # A tier-N trigger re-reads its upstream collection from the vector store.
    started = await stack.ok("POST", f"/v1/collections/{tier3}/trigger", namespace=ns)
    task = await stack.wait_task(started["task_id"])
    assert task["status"] == "COMPLETED" and task["result"]["documents_written"] == len(second)

    # Deleting the object removes its documents at every tier.
    await stack.ok("DELETE", f"/v1/objects/{ids[0]}", namespace=ns)
    for _ in range(200):
        if ids[0] not in {d["root_object_id"] for d in await stack.documents(ns, tier3)}:
            break
        await asyncio.sleep(0.02)
    for col in (tier1, tier2, tier3):
        assert ids[0] not in {d["root_object_id"] for d in await stack.documents(ns, col)}


async def test_namespace_clone_forks_vectors_both_ways_isolated(stack: Stack) -> None:
    parent = await stack.namespace("prod")
    bucket = await stack.bucket(parent)
    col = await stack.collection(parent, {"type": "bucket", "bucket_id": bucket})
    await stack.objects(parent, bucket, scifact(20))
    await stack.wait_documents(parent, col, 20)

    clone = await stack.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})
    task = await stack.wait_task(clone["task_id"])
    assert task["status"] == "COMPLETED", task
    staging = (await stack.ok("GET", "/v1/namespaces/staging"))["namespace_id"]
    clone_col = derive(staging, col)
    inherited = await stack.wait_documents(staging, clone_col, 20)
    assert {d["collection_id"] for d in inherited} == {clone_col}
    view = await stack.view(staging, clone_col)
    assert view.parent == col and view.space == (await stack.view(parent, col)).space

    after = scifact(3, skip=20)
    await stack.objects(parent, bucket, after)  # written in prod after the clone
    await stack.wait_documents(parent, col, 23)
    own = scifact(2, skip=30)
    await stack.objects(staging, derive(staging, bucket), own)  # written in staging
    await stack.wait_documents(staging, clone_col, 22)
    assert len(await stack.documents(parent, col)) == 23

    extractor = stack.service.extractor_for(STATIC)
    for row in after:
        (query,) = extractor.embed([row["text"]], role="query")
        vector = DenseVector(
            feature_uri=extractor.info.feature_uri, values=tuple(query.values.tolist())
        )
        hits = await stack.vectors.search(
            view=await stack.view(staging, clone_col), query=vector, top_k=25
        )
        assert row["_id"] not in {h.payload["_id"] for h in hits}
    for row in own:
        (query,) = extractor.embed([row["text"]], role="query")
        vector = DenseVector(
            feature_uri=extractor.info.feature_uri, values=tuple(query.values.tolist())
        )
        hits = await stack.vectors.search(
            view=await stack.view(parent, col), query=vector, top_k=25
        )
        assert row["_id"] not in {h.payload["_id"] for h in hits}


async def _clone_with_masks(stack: Stack, name: str) -> tuple[str, str, list[str]]:
    """A namespace with 12 documents cloned; in the clone 2 inherited objects are deleted (masks)
    and 1 object is added. Returns the clone, its collection and the clone's object ids."""
    parent = await stack.namespace(f"{name}-prod")
    bucket = await stack.bucket(parent)
    col = await stack.collection(parent, {"type": "bucket", "bucket_id": bucket})
    ids = await stack.objects(parent, bucket, scifact(12))
    await stack.wait_documents(parent, col, 12)
    body = {"namespace_name": f"{name}-staging"}
    clone = await stack.ok("POST", f"/v1/namespaces/{name}-prod/clone", json=body)
    assert (await stack.wait_task(clone["task_id"]))["status"] == "COMPLETED"
    staging = (await stack.ok("GET", f"/v1/namespaces/{name}-staging"))["namespace_id"]
    clone_col = derive(staging, col)
    await stack.wait_documents(staging, clone_col, 12)
    for object_id in ids[:2]:
        await stack.ok("DELETE", f"/v1/objects/{object_id}", namespace=staging)
    await stack.objects(staging, derive(staging, bucket), scifact(1, skip=40))
    await stack.wait_documents(staging, clone_col, 11)
    return staging, clone_col, ids


async def _reads(stack: Stack, ns: str, col: str) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """What a user sees: every document (id, text) and the top 5 of three searches."""
    docs = sorted((d["document_id"], d["text"]) for d in await stack.documents(ns, col))
    extractor = stack.service.extractor_for(STATIC)
    tops = []
    for row in scifact(3, skip=5):
        (query,) = extractor.embed([row["text"]], role="query")
        vector = DenseVector(
            feature_uri=extractor.info.feature_uri, values=tuple(query.values.tolist())
        )
        hits = await stack.vectors.search(view=await stack.view(ns, col), query=vector, top_k=5)
        tops.append([h.document_id for h in hits])
    return docs, tops


async def test_materialising_a_clone_is_a_task_and_reads_the_same(stack: Stack) -> None:
    staging, clone_col, _ = await _clone_with_masks(stack, "mat")
    before = await _reads(stack, staging, clone_col)
    view = await stack.view(staging, clone_col)
    assert view.masked and any(not s.live for s in view.segments)

    started = await stack.ok("POST", f"/v1/collections/{clone_col}/materialise", namespace=staging)
    task = await stack.wait_task(started["task_id"])

    assert task["status"] == "COMPLETED", task
    assert task["result"]["points"] == task["result"]["points_after"] == 11
    view = await stack.view(staging, clone_col)
    assert not view.masked and all(s.live for s in view.segments)  # no parent point is read
    assert await _reads(stack, staging, clone_col) == before


async def test_a_clone_past_the_mask_threshold_materialises_itself(stack: Stack) -> None:
    stack.vectors.mask_threshold = 1
    staging, clone_col, _ = await _clone_with_masks(stack, "auto")
    await stack.service.idle()
    view = await stack.view(staging, clone_col)
    assert not view.masked and all(s.live for s in view.segments)
    assert len(await stack.documents(staging, clone_col)) == 11
