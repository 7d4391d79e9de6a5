"""Evaluations, datasets, interactions, benchmarks and collection diffs through HTTP, on both
stacks, over SciFact abstracts embedded with minilm-static@v1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.evaluation.metrics import evaluate_runs
from tests.catalog.conftest import Api
from tests.evaluation.conftest import (
    corpus_rows,
    dataset_queries,
    make_dataset,
    make_retriever,
    namespace_with_corpus,
)

QUERIES = dataset_queries(20)


async def evaluated(client: Api, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    started = await client.ok("POST", "/v1/evaluations", namespace=ns, json=body)
    task = await client.wait_task(started["task_id"])
    assert task["status"] == "COMPLETED", task
    assert task["kind"] == "evaluation.run"
    result: dict[str, Any] = await client.ok(
        "GET", f"/v1/evaluations/{started['evaluation_id']}", namespace=ns
    )
    return result


async def test_an_evaluation_scores_a_retriever_and_an_alias_on_scifact_queries(api: Api) -> None:
    queries = [*QUERIES, {"query_id": "ghost", "query_input": "cells",
                          "relevant_documents": ["no-such-doc"]}]  # fmt: skip
    ns, collection = await namespace_with_corpus(api, corpus_rows(QUERIES, filler=60))
    retriever = await make_retriever(api, ns, collection, "dense")
    await api.ok("POST", "/v1/aliases", namespace=ns,
                 json={"alias_name": "search", "retriever_id": retriever})  # fmt: skip
    dataset = await make_dataset(api, ns, queries)

    result = await evaluated(api, ns, {"retriever_id": "search", "dataset_id": "gold",
                                        "k_values": [1, 5, 10, 100]})  # fmt: skip

    assert result["status"] == "COMPLETED"
    assert (result["retriever_id"], result["alias_name"], result["dataset_id"]) == (
        retriever, "search", dataset,
    )  # fmt: skip
    by_k = result["metrics_by_k"]
    assert set(by_k) == {"1", "5", "10", "100"}
    assert set(by_k["10"]) == {"precision", "recall", "f1", "map", "ndcg", "mrr"}
    assert 0.4 < by_k["10"]["ndcg"] <= 1.0  # the relevant abstracts are in a small corpus
    assert result["missing_documents"] == ["no-such-doc"]  # reported and counted as a miss
    rows = {row["query_id"]: row for row in result["per_query"]}
    assert rows["ghost"]["metrics_by_k"]["100"]["recall"] == 0.0
    assert (
        result["latency_ms"]["p50"] > 0
        and result["latency_ms"]["p95"] >= result["latency_ms"]["p50"]
    )
    # the per-query drill-down adds up to the aggregate
    runs = {q: row["retrieved"] for q, row in rows.items()}
    qrels = {q: row["relevant_documents"] for q, row in rows.items()}
    _, again, _ = evaluate_runs(runs, qrels, [10])
    assert again[10]["ndcg"] == pytest.approx(by_k["10"]["ndcg"], abs=1e-12)

    listed = (await api.ok("GET", "/v1/evaluations", namespace=ns))["results"]
    assert [e["evaluation_id"] for e in listed] == [result["evaluation_id"]]
    assert "per_query" not in listed[0]


async def test_bad_input_is_a_clear_4xx(api: Api) -> None:
    ns, collection = await namespace_with_corpus(api, corpus_rows(QUERIES[:2], filler=5))
    retriever = await make_retriever(api, ns, collection, "dense")
    other = (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "other"}))[
        "namespace_id"
    ]
    empty = await api.call("POST", "/v1/evaluations/datasets", namespace=ns,
                           json={"dataset_name": "empty", "queries": []})  # fmt: skip
    assert empty.status_code == 422 and "at least one query" in empty.text
    await make_dataset(api, ns, QUERIES[:2])
    bad_k = await api.call("POST", "/v1/evaluations", namespace=ns,
                           json={"retriever_id": retriever, "dataset_id": "gold", "k_values": [0, 10]})  # fmt: skip
    assert bad_k.status_code == 422 and "k_values" in bad_k.text
    foreign = await api.call("POST", "/v1/evaluations", namespace=other,
                             json={"retriever_id": retriever, "dataset_id": "gold"})  # fmt: skip
    assert foreign.status_code == 404
    await make_dataset(api, other, QUERIES[:2])
    foreign = await api.call("POST", "/v1/evaluations", namespace=other,
                             json={"retriever_id": retriever, "dataset_id": "gold"})  # fmt: skip
    assert foreign.status_code == 404 and "no retriever or alias" in foreign.text
    mismatched = await api.call("POST", "/v1/evaluations/datasets", namespace=ns, json={
        "dataset_name": "x", "queries": [{"query_id": "q", "query_input": "a",
                                          "relevant_documents": ["a", "b"], "relevance_scores": [1]}]})  # fmt: skip
    assert mismatched.status_code == 422
    assert (
        await api.call("GET", "/v1/evaluations/evl_00000000000000000000", namespace=ns)
    ).status_code == 404


async def test_benchmarks_replay_simulated_sessions_with_deltas_and_significance(api: Api) -> None:
    ns, collection = await namespace_with_corpus(api, corpus_rows(QUERIES, filler=60))
    baseline = await make_retriever(api, ns, collection, "dense")
    twin = await make_retriever(api, ns, collection, "dense-twin")
    degraded = await make_retriever(api, ns, collection, "ignores-the-query",
                                    query="penguin colonies on antarctic ice")  # fmt: skip
    dataset = await make_dataset(api, ns, QUERIES)
    created = await api.ok("POST", "/v1/benchmarks", namespace=ns, json={
        "benchmark_name": "static-vs-itself", "baseline_retriever_id": baseline,
        "candidate_retriever_ids": [twin, degraded], "session_count": 20})  # fmt: skip
    assert created["status"] == "DRAFT"
    nothing = await api.call(
        "POST", f"/v1/benchmarks/{created['benchmark_id']}/execute", namespace=ns
    )
    assert nothing.status_code == 409 and "no recorded sessions" in nothing.text
    simulated = await api.ok("POST", "/v1/interactions/simulate", namespace=ns,
                             json={"dataset_id": dataset, "session_count": 20, "seed": 7})  # fmt: skip
    assert simulated["session_count"] == 20
    assert simulated["interaction_count"] >= 20
    clicks = (await api.ok("GET", "/v1/interactions", namespace=ns, params={"limit": 5}))["results"]
    assert clicks[0]["interaction_type"] == "click" and clicks[0]["document_id_field"] == "doc"

    run = await api.ok("POST", f"/v1/benchmarks/{created['benchmark_id']}/execute", namespace=ns)
    assert (await api.wait_task(run["task_id"]))["status"] == "COMPLETED"
    results = (await api.ok("GET", f"/v1/benchmarks/{created['benchmark_id']}", namespace=ns))[
        "results"
    ]

    assert results["sessions_replayed"] == 20
    base = results["retrievers"][baseline]
    assert 0.4 < base["ndcg_at_k"] <= 1 and base["mean_clicked_rank"] >= 1
    assert base["latency_ms"]["p95"] >= base["latency_ms"]["p50"] > 0
    same = results["comparisons"][twin]
    assert same["deltas"]["ndcg_at_k"] == 0 and same["deltas"]["mrr"] == 0
    assert same["sessions_neutral"] == 20
    assert same["significance"]["p_value"] == 1.0 and same["verdict"] == "neutral"
    worse = results["comparisons"][degraded]
    assert worse["deltas"]["ndcg_at_k"] < -0.3
    assert worse["sessions_degraded"] > worse["sessions_improved"]
    assert worse["significance"]["p_value"] < 0.01
    assert worse["significance"]["ci_high"] < 0 and worse["verdict"] == "degraded"

    assert (await api.call("POST", "/v1/benchmarks/bmk_00000000000000000000/execute",
                           namespace=ns)).status_code == 404  # fmt: skip


async def test_collection_diff_names_the_change_and_what_to_reembed(api: Api) -> None:
    ns = (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "d"}))["namespace_id"]
    bucket = (await api.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"}))[
        "bucket_id"
    ]
    specs = {
        "static": {"feature_extractor_name": "minilm-static", "version": "v1"},
        "static-again": {"feature_extractor_name": "minilm-static", "version": "v1"},
        "static-chunked": {"feature_extractor_name": "minilm-static", "version": "v1",
                           "parameters": {"chunking": {"mode": "sentences", "size": 3}}},
        "minilm": {"feature_extractor_name": "minilm", "version": "v1"},
    }  # fmt: skip
    for name, spec in specs.items():
        await api.ok("POST", "/v1/collections", namespace=ns, json={
            "collection_name": name, "source": {"type": "bucket", "bucket_id": bucket},
            "feature_extractor": spec})  # fmt: skip

    async def diff(a: str, b: str) -> dict[str, Any]:
        for _ in range(250):  # the extractor registers a new collection a moment later
            response = await api.call("GET", f"/v1/collections/{a}/diff/{b}", namespace=ns)
            if response.status_code != 404:
                break
            await asyncio.sleep(0.02)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    assert (await diff("static", "static-again"))["change"] == "NONE"
    assert (await diff("static", "static-again"))["reembed_required"] is False
    chunked = await diff("static", "static-chunked")
    assert chunked["change"] == "CONFIG_CHANGE"
    assert [d["field"] for d in chunked["differences"]] == ["parameters.chunking"]
    model = await diff("static", "minilm")
    assert model["change"] == "DIMENSION_CHANGE" and model["new_vector_space"] is True
    assert (
        await api.call("GET", "/v1/collections/static/diff/nope", namespace=ns)
    ).status_code == 404


async def test_a_namespace_clone_carries_its_datasets(api: Api) -> None:
    ns = (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"}))["namespace_id"]
    dataset = await make_dataset(api, ns, QUERIES[:3])
    task = await api.ok("POST", f"/v1/namespaces/{ns}/clone",
                        json={"namespace_name": "staging"})  # fmt: skip
    done = await api.wait_task(task["task_id"])
    assert done["status"] == "COMPLETED", done
    clone = done["result"]["namespace_id"]
    copied = await api.ok("GET", "/v1/evaluations/datasets/gold", namespace=clone)
    assert copied["dataset_id"] != dataset and copied["query_count"] == 3
    assert copied["queries"][0]["query_id"] == QUERIES[0]["query_id"]
