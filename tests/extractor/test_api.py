"""The listing of feature extractors, error replies, and idempotent handling of redeliveries."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts.catalog import ObjectStored
from contracts.envelope import Envelope
from libs.errors import InvalidInputError
from libs.eventstore import EventStore
from libs.vectors import DenseVector, PointIn
from services.extractor import inbox
from services.extractor.pipeline import InputError, object_input, object_text
from tests.extractor.conftest import STATIC, Stack, scifact


async def test_feature_extractors_are_listed_without_a_namespace(stack: Stack) -> None:
    listing = (await stack.ok("GET", "/v1/feature-extractors"))["results"]
    by_name = {item["name"]: item for item in listing}
    assert {"minilm", "minilm-static", "mpnet", "bm25"} <= set(by_name)
    static = by_name["minilm-static"]
    assert static["outputs"][0]["feature_uri"] == "offshoot://minilm-static@v1/text_embedding"
    assert static["outputs"][0]["dimensions"] == 256
    assert static["outputs"][0]["distance"] == "cosine"
    assert "chunking" in static["parameters_schema"]["properties"]
    assert len(static["config_hash"]) == 64
    assert by_name["bm25"]["outputs"][0]["kind"] == "sparse"


async def test_errors_are_clear(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    await stack.objects(ns, bucket, scifact(2))
    await stack.wait_documents(ns, col, 2)
    for path in ("/v1/collections/col_00000000000000000000/documents",
                 "/v1/documents/doc_00000000000000000000", "/v1/batches/bat_00000000000000000000"):  # fmt: skip
        response = await stack.call("GET", path, namespace=ns)
        assert response.status_code == 404 and "not found" in response.json()["error"]
    assert (await stack.call("GET", f"/v1/collections/{col}/documents", namespace=ns,
                             params={"limit": 0})).status_code == 422  # fmt: skip
    assert (await stack.call("GET", f"/v1/collections/{col}/documents")).status_code == 422

    view = await stack.view(ns, col)
    wrong = DenseVector(
        feature_uri="offshoot://minilm-static@v1/text_embedding", values=(0.1,) * 384
    )
    with pytest.raises(InvalidInputError, match="384"):
        await stack.vectors.upsert(
            view=view, points=[PointIn(document_id="x", vector=wrong)], position=10**6
        )
    other = DenseVector(feature_uri="offshoot://minilm@v1/text_embedding", values=(0.1,) * 256)
    with pytest.raises(InvalidInputError, match="minilm@v1"):
        await stack.vectors.search(view=view, query=other)


async def test_a_redelivered_event_changes_nothing(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    await stack.objects(ns, bucket, scifact(1))
    await stack.wait_documents(ns, col, 1)
    row = scifact(1, skip=1)[0]
    event = ObjectStored(object_id="obj_" + uuid.uuid4().hex[:20], bucket_id=bucket, fields=row)
    envelope = Envelope(event_id=uuid.uuid4(), type=event.type_name, stream_id=ns, version=99,
                        global_position=10**6, namespace_id=ns, data=event.model_dump(mode="json"))  # fmt: skip
    head = await stack.service.store.head_position()
    await stack.service.handle(envelope)
    await stack.service.idle()
    once = await stack.service.store.head_position()
    await stack.service.handle(envelope)
    await stack.service.idle()
    assert await stack.service.store.head_position() == once > head
    assert len(await stack.documents(ns, col)) == 2
    assert await stack.vectors.count(view=await stack.view(ns, col)) == 2


async def test_objects_are_written_in_chunks_and_a_replayed_chunk_writes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(ns, {"type": "bucket", "bucket_id": bucket})
    while await stack.service.collection(ns, col) is None:  # noqa: ASYNC110 (the bus hop)
        await asyncio.sleep(0.01)
    envelopes = []
    for offset, row in enumerate(scifact(5)):
        event = ObjectStored(object_id=f"obj_{uuid.uuid4().hex[:20]}", bucket_id=bucket, fields=row)
        envelopes.append(Envelope(event_id=uuid.uuid4(), type=event.type_name, stream_id=ns,
                                  version=99 + offset, global_position=10**6 + offset,
                                  namespace_id=ns, data=event.model_dump(mode="json")))  # fmt: skip
    # The process "crashes" once after the chunk's writes, before the chunk is marked done.
    finish, crashes = inbox.finish, [RuntimeError("crash after the writes")]

    async def crash_once(store: EventStore, chunk: uuid.UUID) -> None:
        if crashes:
            raise crashes.pop()
        await finish(store, chunk)

    monkeypatch.setattr(inbox, "finish", crash_once)
    head = await stack.service.store.head_position()
    lock = stack.service._drain_locks.setdefault(ns, asyncio.Lock())
    async with lock:  # the five arrive while the namespace's drain is busy: one chunk
        for envelope in envelopes:
            await stack.service.handle(envelope)
    await stack.service.idle()
    await stack.service.handle(envelopes[0])  # and the bus redelivers one of them
    await stack.service.idle()
    written = await stack.service.store.read_all(from_position=head)
    assert not crashes
    assert [e.type for e in written] == ["extractor.documents_written"]
    assert len(written[0].data["documents"]) == 5
    assert await stack.vectors.count(view=await stack.view(ns, col)) == 5


def test_object_text_follows_mappings_and_blobs(tmp_path: object) -> None:
    assert object_text({"abstract": "A"}, [], {"text": "abstract"}) == "A"
    assert object_text({"doc": {"body": "nested"}}, [], {"text": "doc.body"}) == "nested"
    assert object_text({}, [{"property": "text", "text": "inline"}], {"text": "text"}) == "inline"
    with pytest.raises(InputError, match="no text"):
        object_text({"title": "only"}, [], {"text": "text"})
    with pytest.raises(InputError, match="not text"):
        object_text({"text": 3}, [], {"text": "text"})
    with pytest.raises(InputError, match="cannot fetch"):
        object_text({}, [{"property": "text", "url": "https://example.com/a"}], {"text": "text"})
    failed = object_input("obj_1", "bkt_1", {}, [], {"text": "text"})
    assert failed.text is None and failed.error is not None


async def test_over_long_text_is_truncated_and_flagged(stack: Stack) -> None:
    ns = await stack.namespace()
    bucket = await stack.bucket(ns)
    col = await stack.collection(
        ns,
        {"type": "bucket", "bucket_id": bucket},
        {"feature_extractor_name": "minilm", "version": "v1"},
    )
    long_text = " ".join(row["text"] for row in scifact(4))
    await stack.objects(ns, bucket, [{"text": long_text}, {"text": "short"}])
    docs = await stack.wait_documents(ns, col, 2)
    assert sorted(d["truncated"] for d in docs) == [False, True]
    assert STATIC  # the cheap model is the default elsewhere
