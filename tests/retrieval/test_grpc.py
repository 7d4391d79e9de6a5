"""gRPC ``Execute`` (contracts/retrieval.proto) against HTTP on both stacks, and the checked-in
generated code against a fresh protoc run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from contracts.generated import retrieval_pb2, retrieval_pb2_grpc
from services.retrieval.protogen import TARGET, generate
from services.retrieval.variants import in_canary
from tests.catalog.conftest import Api
from tests.retrieval.conftest import corpus, mmr_stage, retriever, search_stage


@pytest.fixture
def runtime_options() -> dict[str, Any]:
    return {"grpc_port": 0}


def _metadata(api: Api, ns: str, key: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key or api.admin_key}"), ("x-namespace", ns))


def _documents(results: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (d["document_id"], d["collection_id"], d["score"], d.get("root_object_id"), d["payload"])
        for d in results
    ]


async def _grpc(api: Api, request: Any, metadata: Any) -> dict[str, Any]:
    assert api.runtime.retrieval is not None and api.runtime.retrieval.grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.runtime.retrieval.grpc_port}") as ch:
        response = await retrieval_pb2_grpc.RetrievalStub(ch).Execute(request, metadata=metadata)
    return json_format.MessageToDict(response, preserving_proto_field_name=True)


async def test_http_and_grpc_return_identical_results(api: Api) -> None:
    ns, collection, rows = await corpus(api, 20)
    blue = await retriever(api, ns, collection, name="blue")
    green = await retriever(
        api, ns, collection, name="green", stages=[search_stage(), mmr_stage(limit=5)]
    )
    alias = await api.ok("POST", "/v1/aliases", namespace=ns,
                         json={"alias_name": "production", "retriever_id": blue["retriever_id"]})  # fmt: skip
    await api.ok("POST", "/v1/aliases/production/canary", namespace=ns,
                 json={"retriever_id": green["retriever_id"], "percent": 50})  # fmt: skip
    inputs = {"query": rows[4]["title"]}
    names = [f"user-{i}" for i in range(100)]
    users = [
        next(u for u in names if in_canary(alias["alias_id"], u, 50)),
        next(u for u in names if not in_canary(alias["alias_id"], u, 50)),
    ]

    by_id_http = await api.ok("POST", f"/v1/retrievers/{blue['retriever_id']}/execute",
                              namespace=ns, json={"inputs": inputs, "limit": 7})  # fmt: skip
    by_id_grpc = await _grpc(
        api,
        retrieval_pb2.ExecuteRequest(retriever_id=blue["retriever_id"], inputs=inputs, limit=7),
        _metadata(api, ns),
    )
    aliased = []
    for user in users:
        http = await api.ok("POST", "/v1/aliases/production/execute", namespace=ns,
                            json={"inputs": inputs, "user_id": user})  # fmt: skip
        request = retrieval_pb2.ExecuteRequest(alias_name="production", inputs=inputs, user_id=user)
        aliased.append((http, await _grpc(api, request, _metadata(api, "papers"))))

    assert len(by_id_grpc["results"]) == 7
    assert _documents(by_id_grpc["results"]) == _documents(by_id_http["results"])
    assert by_id_grpc["feature_uris"] == by_id_http["feature_uris"]
    assert [s["stage_name"] for s in by_id_grpc["stages"]] == ["search"]
    for http, rpc in aliased:
        assert (rpc["served_by"], rpc["variant"]) == (http["served_by"], http["variant"])
        assert _documents(rpc["results"]) == _documents(http["results"])
    assert [rpc["served_by"] for _, rpc in aliased] == [
        green["retriever_id"], blue["retriever_id"],
    ]  # fmt: skip


async def test_grpc_errors_carry_the_http_meaning(api: Api) -> None:
    ns, collection, _ = await corpus(api, 3)
    created = await retriever(api, ns, collection)

    async def code(request: Any, metadata: Any) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await _grpc(api, request, metadata)
        return failure.value.code(), failure.value.details() or ""

    no_input = await code(
        retrieval_pb2.ExecuteRequest(retriever_id=created["retriever_id"]), _metadata(api, ns)
    )
    unknown = await code(retrieval_pb2.ExecuteRequest(alias_name="nowhere"), _metadata(api, ns))
    bad_key = await code(
        retrieval_pb2.ExecuteRequest(retriever_id=created["retriever_id"]),
        _metadata(api, ns, key="sk_live.nobody.secret"),
    )

    assert no_input[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert "query" in no_input[1]
    assert unknown[0] == grpc.StatusCode.NOT_FOUND
    assert bad_key[0] == grpc.StatusCode.UNAUTHENTICATED


def test_the_checked_in_grpc_code_matches_the_proto(tmp_path: Path) -> None:
    fresh = generate(tmp_path)

    stale = [name for name, text in fresh.items() if (TARGET / name).read_text() != text]

    assert not stale, f"regenerate with `python -m services.retrieval.protogen`: {stale}"
