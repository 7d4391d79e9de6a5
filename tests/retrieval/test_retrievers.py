"""Retrievers and aliases through HTTP, on both stacks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.conftest import Api
from tests.retrieval.conftest import (
    QUERY_SCHEMA,
    STATIC_URI,
    corpus,
    mmr_stage,
    retriever,
    search_stage,
    wait_documents,
)

BM25_URI = "offshoot://bm25@v1/sparse_embedding"


async def _execute(api: Api, ns: str, path: str, query: str, **extra: Any) -> dict[str, Any]:
    body = {"inputs": {"query": query}, **extra}
    result: dict[str, Any] = await api.ok("POST", f"{path}/execute", namespace=ns, json=body)
    return result


async def test_a_title_finds_its_own_abstract(api: Api) -> None:
    ns, collection, rows = await corpus(api)
    created = await retriever(api, ns, collection)

    assert created["retriever_id"].startswith("ret_")
    for row in rows[:5]:
        result = await _execute(
            api, ns, f"/v1/retrievers/{created['retriever_id']}", row["title"], limit=3
        )
        top = result["results"][0]
        assert top["root_object_id"] == row["object_id"]
        assert top["collection_id"] == collection
        assert len(result["results"]) == 3
        assert result["feature_uris"] == ["offshoot://minilm-static@v1/text_embedding"]
        assert [s["stage_name"] for s in result["stages"]] == ["search"]
        assert "duration_ms" in result["stages"][0]
        assert set(result["cache"]) >= {"execution_hit", "stage_hits"}

    listed = await api.ok("GET", "/v1/retrievers", namespace=ns)
    by_name = await api.ok("GET", "/v1/retrievers/search", namespace=ns)
    explained = await api.ok(
        "POST", f"/v1/retrievers/{created['retriever_id']}/explain", namespace=ns
    )
    stages = await api.ok("GET", "/v1/retrievers/stages")
    assert [r["retriever_id"] for r in listed["results"]] == [created["retriever_id"]]
    assert by_name["retriever_id"] == created["retriever_id"]
    assert explained["plan"]["stages"][0]["stage_id"] == "feature_search"
    assert {"feature_search", "mmr"} <= {s["stage_id"] for s in stages["results"]}
    assert all("parameters_schema" in s for s in stages["results"])


async def test_a_repeated_query_is_served_from_the_cache(api: Api) -> None:
    ns, collection, rows = await corpus(api, 10)
    created = await retriever(api, ns, collection)
    path = f"/v1/retrievers/{created['retriever_id']}"

    first = await _execute(api, ns, path, rows[0]["title"])
    second = await _execute(api, ns, path, rows[0]["title"])

    assert not first["cache"]["execution_hit"]
    assert second["cache"]["execution_hit"]
    assert second["results"] == first["results"]


async def test_two_models_in_two_collections_fuse_per_abstract(api: Api) -> None:
    """A migration's old and new collections hold the same abstracts under document ids of
    their own: fusion combines each abstract's scores instead of listing it once per model."""
    ns, static, rows = await corpus(api, 20)
    bucket = (await api.ok("GET", f"/v1/collections/{static}", namespace=ns))["source"]
    lexical = await api.ok("POST", "/v1/collections", namespace=ns, json={
        "collection_name": "lexical", "source": bucket,
        "feature_extractor": {"feature_extractor_name": "bm25", "version": "v1"}})  # fmt: skip
    await wait_documents(api, ns, lexical["collection_id"], 20)  # the back-fill
    legs = [{"feature_uri": STATIC_URI, "query": "{{INPUT.query}}", "top_k": 20, "weight": 0.9},
            {"feature_uri": BM25_URI, "query": "{{INPUT.query}}", "top_k": 20, "weight": 0.1}]  # fmt: skip
    stage = {"stage_name": "blend", "stage_type": "filter", "config": {
        "stage_id": "feature_search",
        "parameters": {"searches": legs, "fusion": "weighted", "final_top_k": 40}}}  # fmt: skip
    created = await api.ok("POST", "/v1/retrievers", namespace=ns, json={
        "retriever_name": "blend", "collection_identifiers": [static, lexical["collection_id"]],
        "input_schema": QUERY_SCHEMA, "stages": [stage]})  # fmt: skip

    answer = await _execute(api, ns, f"/v1/retrievers/{created['retriever_id']}", rows[0]["title"])

    roots = [d["root_object_id"] for d in answer["results"]]
    assert len(roots) == len(set(roots)) == 20  # one result per abstract
    assert roots[0] == rows[0]["object_id"]
    assert set(answer["results"][0]["leg_scores"]) == {STATIC_URI, BM25_URI}


async def test_a_clone_with_mmr_leaves_the_original_unchanged(api: Api) -> None:
    ns, collection, rows = await corpus(api)
    original = await retriever(api, ns, collection)
    path = f"/v1/retrievers/{original['retriever_id']}"
    before = await _execute(api, ns, path, rows[0]["title"])

    clone = await api.ok(
        "POST", f"{path}/clone", namespace=ns,
        json={"retriever_name": "diverse", "stages": [search_stage(), mmr_stage(limit=5)]},
    )  # fmt: skip

    after = await _execute(api, ns, path, rows[0]["title"])
    cloned = await _execute(api, ns, f"/v1/retrievers/{clone['retriever_id']}", rows[0]["title"])
    assert clone["retriever_id"] != original["retriever_id"]
    assert clone["cloned_from"] == original["retriever_id"]
    assert clone["collection_ids"] == original["collection_ids"]
    assert (await api.ok("GET", path, namespace=ns))["stages"] == original["stages"]
    assert [d["document_id"] for d in after["results"]] == [
        d["document_id"] for d in before["results"]
    ]
    assert [s["stage_name"] for s in cloned["stages"]] == ["search", "diversify"]
    assert len(cloned["results"]) == 5


async def test_patch_changes_only_names_and_refuses_stages(api: Api) -> None:
    ns, collection, _ = await corpus(api, 5)
    created = await retriever(api, ns, collection)
    path = f"/v1/retrievers/{created['retriever_id']}"

    renamed = await api.ok(
        "PATCH", path, namespace=ns, json={"retriever_name": "renamed", "tags": ["prod"]}
    )
    refused = await api.call(
        "PATCH", path, namespace=ns, json={"stages": [search_stage(), mmr_stage()]}
    )
    refused_collections = await api.call(
        "PATCH", path, namespace=ns, json={"collection_identifiers": [collection]}
    )

    assert renamed["retriever_name"] == "renamed"
    assert renamed["tags"] == ["prod"]
    assert refused.status_code == 409
    assert "clone" in refused.json()["error"]
    assert refused_collections.status_code == 409


async def test_aliases_move_roll_back_and_record_history(api: Api) -> None:
    ns, collection, rows = await corpus(api, 20)
    blue = await retriever(api, ns, collection, name="blue")
    green = await retriever(
        api, ns, collection, name="green", stages=[search_stage(), mmr_stage(limit=2)]
    )
    alias = await api.ok(
        "POST", "/v1/aliases", namespace=ns,
        json={"alias_name": "production", "retriever_id": blue["retriever_id"]},
    )  # fmt: skip
    assert alias["alias_id"].startswith("ali_")

    served = await _execute(api, ns, "/v1/aliases/production", rows[0]["title"])
    refused = await api.call("DELETE", f"/v1/retrievers/{blue['retriever_id']}", namespace=ns)
    await api.ok(
        "POST", "/v1/aliases/production/move", namespace=ns,
        json={"retriever_id": green["retriever_id"], "reason": "green wins the evaluation"},
    )  # fmt: skip
    moved = await _execute(api, ns, "/v1/aliases/production", rows[0]["title"])
    await api.ok("POST", "/v1/aliases/production/rollback", namespace=ns,
                 json={"reason": "latency regression"})  # fmt: skip
    rolled = await _execute(api, ns, "/v1/aliases/production", rows[0]["title"])
    history = await api.ok("GET", "/v1/aliases/production/history", namespace=ns)

    assert served["served_by"] == blue["retriever_id"]
    assert refused.status_code == 409
    assert "production" in refused.json()["error"]
    assert moved["served_by"] == green["retriever_id"]
    assert len(moved["results"]) == 2
    assert rolled["served_by"] == blue["retriever_id"]
    key_id = api.admin_key.split(".")[1]
    moves = history["results"]
    assert [(m["kind"], m["from_retriever_id"], m["to_retriever_id"]) for m in moves] == [
        ("create", None, blue["retriever_id"]),
        ("move", blue["retriever_id"], green["retriever_id"]),
        ("rollback", green["retriever_id"], blue["retriever_id"]),
    ]
    assert [m["reason"] for m in moves[1:]] == ["green wins the evaluation", "latency regression"]
    assert all(m["moved_by"] == key_id and m["moved_at"] for m in moves)

    await api.ok("POST", "/v1/aliases/production/move", namespace=ns,
                 json={"retriever_id": green["retriever_id"]})  # fmt: skip
    deleted = await api.call("DELETE", f"/v1/retrievers/{blue['retriever_id']}", namespace=ns)
    assert deleted.status_code == 204


async def test_a_namespace_clone_gets_working_retrievers_on_its_own_collections(api: Api) -> None:
    ns, collection, rows = await corpus(api, 20)
    created = await retriever(api, ns, collection)
    await api.ok("POST", "/v1/aliases", namespace=ns,
                 json={"alias_name": "production", "retriever_id": created["retriever_id"]})  # fmt: skip

    task = await api.ok("POST", "/v1/namespaces/papers/clone", json={"namespace_name": "staging"})
    finished = await api.wait_task(task["task_id"])
    assert finished["status"] == "COMPLETED", finished

    clone_ns = finished["result"]["namespace_id"]
    listed = await api.ok("GET", "/v1/retrievers", namespace=clone_ns)
    assert len(listed["results"]) == 1
    forked = listed["results"][0]
    assert forked["retriever_id"] != created["retriever_id"]
    assert forked["collection_ids"] != created["collection_ids"]
    result = await _execute(api, clone_ns, "/v1/aliases/production", rows[3]["title"])
    assert result["served_by"] == forked["retriever_id"]
    assert result["results"][0]["collection_id"] == forked["collection_ids"][0]
    original = await _execute(api, ns, "/v1/aliases/production", rows[3]["title"])
    assert original["served_by"] == created["retriever_id"]
    assert result["results"][0]["root_object_id"] == original["results"][0]["root_object_id"]


def _bad_stages() -> list[tuple[str, list[dict[str, Any]], str]]:
    unknown = search_stage()
    unknown["config"]["stage_id"] = "teleport"
    negative = search_stage(top_k=-1)
    missing = search_stage(query="{{INPUT.question}}")
    other_model = search_stage(uri="offshoot://minilm@v1/text_embedding")
    return [
        ("unknown stage id", [unknown], "teleport"),
        ("negative top_k", [negative], "top_k"),
        ("missing input", [missing], "question"),
        ("another model's space", [other_model], "minilm@v1"),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_stages()])
async def test_bad_pipelines_are_422_naming_the_stage(api: Api, case: str) -> None:
    ns, collection, _ = await corpus(api, 3)
    _, stages, detail = next(c for c in _bad_stages() if c[0] == case)

    response = await api.call(
        "POST", "/v1/retrievers", namespace=ns,
        json={"retriever_name": "bad", "collection_identifiers": [collection],
              "input_schema": QUERY_SCHEMA, "stages": stages},
    )  # fmt: skip

    assert response.status_code == 422, response.text
    assert "search" in response.json()["error"]
    assert detail in response.json()["error"]
    assert (await api.ok("GET", "/v1/retrievers", namespace=ns))["results"] == []


async def test_unknown_collections_are_422(api: Api) -> None:
    ns, _, _ = await corpus(api, 3)

    response = await api.call(
        "POST", "/v1/retrievers", namespace=ns,
        json={"retriever_name": "bad", "collection_identifiers": ["nowhere"],
              "stages": [search_stage()]},
    )  # fmt: skip

    assert response.status_code == 422
    assert "nowhere" in response.json()["error"]
