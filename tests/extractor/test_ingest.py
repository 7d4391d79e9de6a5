"""Objects become documents with vectors, payload and lineage; deletes and replacements follow."""

from __future__ import annotations

import asyncio

from libs.vectors import DenseVector, Eq
from tests.extractor.conftest import STATIC, Stack, scifact


async def test_objects_become_documents_with_vectors_and_lineage(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    corpus = scifact(30)
    ids = await stack.objects(ns, bucket, corpus)
    docs = await stack.wait_documents(ns, col, 30)

    assert {d["root_object_id"] for d in docs} == set(ids)
    first = await stack.ok("GET", f"/v1/documents/{docs[0]['document_id']}", namespace=ns)
    assert first["collection_id"] == col
    assert first["lineage_path"] == [bucket, col]
    assert first["feature_uri"] == "offshoot://minilm-static@v1/text_embedding"
    assert first["fields"]["_id"] in {c["_id"] for c in corpus}
    assert first["text"] == next(c["text"] for c in corpus if c["_id"] == first["fields"]["_id"])

    # The vectors are the model's: a document's own text finds it first, and object fields filter.
    view = await stack.view(ns, col)
    extractor = stack.service.extractor_for(STATIC)
    (query,) = extractor.embed([first["text"]], role="query")
    vector = DenseVector(
        feature_uri=extractor.info.feature_uri, values=tuple(query.values.tolist())
    )
    hits = await stack.vectors.search(view=view, query=vector, top_k=3)
    assert hits[0].document_id == first["document_id"]
    only = await stack.vectors.search(
        view=view, query=vector, top_k=3, filter=Eq(field="_id", value=corpus[5]["_id"])
    )
    assert [h.payload["_id"] for h in only] == [corpus[5]["_id"]]


async def test_delete_and_replace_remove_the_old_documents(stack: Stack) -> None:
    ns = await stack.namespace()
    body = {"bucket_name": "keyed", "unique_key": "_id"}
    bucket = (await stack.ok("POST", "/v1/buckets", namespace=ns, json=body))["bucket_id"]
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    corpus = scifact(5)
    ids = await stack.objects(ns, bucket, corpus)
    await stack.wait_documents(ns, col, 5)

    await stack.ok("DELETE", f"/v1/objects/{ids[0]}", namespace=ns)
    docs = await stack.wait_documents(ns, col, 4)
    assert ids[0] not in {d["root_object_id"] for d in docs}

    replaced = {**corpus[1], "text": "A replacement abstract about zebrafish."}
    (new_id,) = await stack.objects(ns, bucket, [replaced])
    for _ in range(200):
        docs = await stack.documents(ns, col)
        if new_id in {d["root_object_id"] for d in docs}:
            break
        await asyncio.sleep(0.02)
    roots = {d["root_object_id"] for d in docs}
    assert new_id in roots and ids[1] not in roots and len(docs) == 4
    assert await stack.vectors.count(view=await stack.view(ns, col)) == 4


async def test_a_collection_on_a_bucket_with_objects_back_fills_them(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    before = await stack.objects(ns, bucket, scifact(40))
    await stack.objects(ns, bucket, [{"title": "no text field here"}])  # fails alone
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    after = await stack.objects(ns, bucket, scifact(3, skip=40))  # live, beside the back-fill
    docs = await stack.wait_documents(ns, col, 43)
    await stack.service.idle()

    assert {d["root_object_id"] for d in docs} == {*before, *after}
    assert await stack.vectors.count(view=await stack.view(ns, col)) == 43
    async with stack.service.store.transaction() as tx:
        (row,) = await tx.fetch(
            "SELECT batch_id FROM ext_batches WHERE collection_id = $1 AND kind = $2",
            col, "backfill",
        )  # fmt: skip
    batch = await stack.ok("GET", f"/v1/batches/{row['batch_id']}", namespace=ns)
    assert batch["status"] == "COMPLETED_WITH_ERRORS"
    assert batch["documents_written"] >= 40  # the page of live objects may be written twice
    assert [f["error"] for f in batch["failures"]] == [
        "no text: the object has no field or blob 'text'"
    ]
