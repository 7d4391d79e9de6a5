"""Access: keys authenticate, permissions nest, and nothing crosses an organization or a key's
namespace scope — a resource the caller may not know about is a 404, on every route."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.catalog.conftest import Api


async def _victim(api: Api) -> dict[str, str]:
    """Resources of the bootstrap organization, one per kind of path parameter."""
    namespace = await api.ok("POST", "/v1/namespaces", json={"namespace_name": "victim"})
    task = await api.ok(
        "POST", "/v1/namespaces/victim/clone", json={"namespace_name": "victim-copy"}
    )
    key = await api.ok("POST", "/v1/keys", json={"name": "reader", "permissions": ["read"]})
    ns = namespace["namespace_id"]
    bucket = await api.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"})
    collection = await api.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "c", "source": {"type": "bucket", "bucket_id": bucket["bucket_id"]},
              "feature_extractor": {"feature_extractor_name": "minilm-static", "version": "v1"}},
    )  # fmt: skip
    item = await api.ok(
        "POST", f"/v1/buckets/{bucket['bucket_id']}/objects", namespace=ns,
        json={"fields": {"text": "a victim's document"}},
    )  # fmt: skip
    trigger = await api.ok(
        "POST", f"/v1/collections/{collection['collection_id']}/trigger", namespace=ns
    )
    await api.wait_task(trigger["task_id"])
    documents = await api.ok(
        "GET", f"/v1/collections/{collection['collection_id']}/documents", namespace=ns
    )
    webhook = await api.ok(
        "POST",
        "/v1/webhooks",
        namespace=ns,
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
    )
    await api.ok(
        "POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b2"}
    )  # an event to deliver
    deliveries: list[dict[str, Any]] = []
    for _ in range(200):
        deliveries = (
            await api.ok("GET", f"/v1/webhooks/{webhook['webhook_id']}/deliveries", namespace=ns)
        )["results"]
        if deliveries:
            break
        await asyncio.sleep(0.05)
    retriever = await api.ok(
        "POST", "/v1/retrievers", namespace=ns,
        json={"retriever_name": "r", "collection_identifiers": [collection["collection_id"]],
              "stages": [{"stage_name": "s", "stage_type": "filter", "config": {
                  "stage_id": "feature_search", "parameters": {"searches": [{
                      "feature_uri": "offshoot://minilm-static@v1/text_embedding",
                      "query": "{{INPUT.query}}", "top_k": 5}]}}}]},
    )  # fmt: skip
    alias = await api.ok(
        "POST", "/v1/aliases", namespace=ns,
        json={"alias_name": "live", "retriever_id": retriever["retriever_id"]},
    )  # fmt: skip
    dataset = await api.ok(
        "POST", "/v1/evaluations/datasets", namespace=ns,
        json={"dataset_name": "gold", "document_id_field": "_id", "queries": [
            {"query_id": "q1", "query_input": "victim", "relevant_documents": ["d1"]}]},
    )  # fmt: skip
    evaluation = await api.ok(
        "POST", "/v1/evaluations", namespace=ns,
        json={"retriever_id": retriever["retriever_id"], "dataset_id": dataset["dataset_id"]},
    )  # fmt: skip
    benchmark = await api.ok(
        "POST", "/v1/benchmarks", namespace=ns,
        json={"benchmark_name": "b", "baseline_retriever_id": retriever["retriever_id"],
              "candidate_retriever_ids": [retriever["retriever_id"]], "session_count": 1},
    )  # fmt: skip
    taxonomy = await api.ok(
        "POST", "/v1/taxonomies", namespace=ns,
        json={"taxonomy_name": "t", "taxonomy_type": "flat",
              "retriever_id": retriever["retriever_id"],
              "input_mappings": [{"input_key": "query", "source": "field", "path": "text"}]},
    )  # fmt: skip
    cluster = await api.ok(
        "POST", "/v1/clusters", namespace=ns,
        json={"collection_id": collection["collection_id"], "algorithm": "kmeans",
              "feature_uri": "offshoot://minilm-static@v1/text_embedding",
              "params": {"n_clusters": 2}},
    )  # fmt: skip
    return {
        "namespace_identifier": ns,
        "retriever_id": retriever["retriever_id"],
        "alias_name": alias["alias_name"],
        "webhook_id": webhook["webhook_id"],
        "delivery_id": deliveries[0]["delivery_id"],
        "task_id": task["task_id"],
        "key_id": key["key_id"],
        "bucket_id": bucket["bucket_id"],
        "object_id": item["object_id"],
        "collection_id": collection["collection_id"],
        "document_id": documents["results"][0]["document_id"],
        "batch_id": trigger["batch_id"],
        "variant": "canary",
        "collection_a": collection["collection_id"],
        "collection_b": collection["collection_id"],
        "dataset_id": dataset["dataset_id"],
        "evaluation_id": evaluation["evaluation_id"],
        "benchmark_id": benchmark["benchmark_id"],
        "taxonomy_id": taxonomy["taxonomy_id"],
        "cluster_id": cluster["cluster_id"],
    }


def _routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) the API serves, from its OpenAPI document: the public route table."""
    paths = api.runtime.app.openapi()["paths"]
    routes = [(m.upper(), p) for p, item in paths.items() for m in item if p.startswith("/v1/")]
    assert len(routes) > 20, "the route table looks incomplete"
    return routes


async def _intruder(api: Api) -> str:
    _, key = await api.runtime.catalog.create_organization("intruder")
    return key.api_key


async def test_every_route_with_an_id_answers_404_to_another_organization(api: Api) -> None:
    victim = await _victim(api)
    intruder = await _intruder(api)

    for method, template in _routes(api):
        params = re.findall(r"{(\w+)}", template)
        if not params:
            continue
        missing = [p for p in params if p not in victim]
        assert not missing, f"teach this test the path parameter(s) {missing} of {template}"
        path = template.format(**victim)
        response = await api.call(
            method,
            path,
            key=intruder,
            namespace=victim["namespace_identifier"],
            json=_body(method, template),
        )
        assert response.status_code == 404, f"{method} {path} answered {response.status_code}"


async def test_lists_never_show_another_organizations_resources(api: Api) -> None:
    victim = await _victim(api)
    intruder = await _intruder(api)

    namespaces = await api.ok("GET", "/v1/namespaces", key=intruder)
    tasks = await api.ok("GET", "/v1/tasks", key=intruder)

    assert namespaces["results"] == []
    assert victim["task_id"] not in {t["task_id"] for t in tasks["results"]}


async def test_every_namespace_scoped_route_answers_404_outside_a_keys_scope(api: Api) -> None:
    victim = await _victim(api)
    other = await api.ok("POST", "/v1/namespaces", json={"namespace_name": "other"})
    scoped = await api.ok(
        "POST",
        "/v1/keys",
        json={"name": "s", "permissions": ["admin"], "namespace_ids": [other["namespace_id"]]},
    )

    for method, template in _routes(api):
        if template.startswith(("/v1/namespaces", "/v1/keys")) or template in GLOBAL_LISTS:
            continue  # organization-level routes, and lists that filter (tested below)
        path = template.format(**victim)
        response = await api.call(
            method,
            path,
            key=scoped["api_key"],
            namespace=victim["namespace_identifier"],
            json=_body(method, template),
        )
        assert response.status_code == 404, f"{method} {path} answered {response.status_code}"


async def test_a_namespace_scoped_key_sees_only_its_namespaces(api: Api) -> None:
    mine = await api.ok("POST", "/v1/namespaces", json={"namespace_name": "mine"})
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "theirs"})
    scoped = await api.ok(
        "POST",
        "/v1/keys",
        json={"name": "scoped", "permissions": ["write"], "namespace_ids": [mine["namespace_id"]]},
    )

    listed = await api.ok("GET", "/v1/namespaces", key=scoped["api_key"])
    hidden = await api.call("GET", "/v1/namespaces/theirs", key=scoped["api_key"])

    assert [n["namespace_name"] for n in listed["results"]] == ["mine"]
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing API key"),
        ("Bearer nonsense", "malformed API key"),
        ("Bearer osk.key_00000000000000000000.abc", "invalid API key"),
        ("Basic dXNlcjpwYXNz", "missing API key"),
    ],
)
async def test_requests_without_a_valid_key_are_401(
    api: Api, authorization: str | None, message: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await api.http.get("/v1/namespaces", headers=headers)

    assert response.status_code == 401
    assert message in response.json()["error"]


async def test_a_wrong_secret_for_a_real_key_is_401(api: Api) -> None:
    key_id = api.admin_key.split(".")[1]

    response = await api.http.get(
        "/v1/namespaces", headers={"Authorization": f"Bearer osk.{key_id}.wrong"}
    )

    assert response.status_code == 401


async def test_a_revoked_key_stops_working(api: Api) -> None:
    key = await api.ok("POST", "/v1/keys", json={"name": "temp", "permissions": ["read"]})
    await api.ok("DELETE", f"/v1/keys/{key['key_id']}")

    response = await api.call("GET", "/v1/namespaces", key=key["api_key"])

    assert response.status_code == 401
    assert "revoked" in response.json()["error"]


async def test_a_read_key_cannot_write(api: Api) -> None:
    reader = await api.ok("POST", "/v1/keys", json={"name": "reader", "permissions": ["read"]})

    response = await api.call(
        "POST", "/v1/namespaces", key=reader["api_key"], json={"namespace_name": "x"}
    )

    assert response.status_code == 403
    assert "'write'" in response.json()["error"]


async def test_only_admin_keys_make_keys(api: Api) -> None:
    writer = await api.ok("POST", "/v1/keys", json={"name": "writer", "permissions": ["write"]})

    response = await api.call(
        "POST", "/v1/keys", key=writer["api_key"], json={"name": "x", "permissions": ["admin"]}
    )

    assert response.status_code == 403


async def test_keys_are_stored_hashed(api: Api) -> None:
    key = await api.ok("POST", "/v1/keys", json={"name": "k", "permissions": ["read"]})

    stored = await api.runtime.catalog.find_key(key["key_id"])

    assert stored is not None
    assert key["api_key"].split(".")[2] not in stored.secret_sha256


GLOBAL_LISTS = (
    "/v1/tasks",
    "/v1/feature-extractors",
    "/v1/retrievers/stages",
)  # not namespace-scoped
VALID_BODIES: dict[str, Any] = {
    "/v1/namespaces/{namespace_identifier}/clone": {"namespace_name": "stolen"},
    "/v1/namespaces/{namespace_identifier}": {"description": "stolen"},
    "/v1/buckets/{bucket_id}": {"description": "stolen"},
    "/v1/buckets/{bucket_id}/objects": {"fields": {}},
    "/v1/buckets/{bucket_id}/objects/batch": {"objects": [{"fields": {}}]},
    "/v1/collections/{collection_id}": {"description": "stolen"},
    "/v1/collections/{collection_id}/clone": {"collection_name": "stolen"},
    "/v1/retrievers/{retriever_id}": {"description": "stolen"},
    "/v1/retrievers/{retriever_id}/clone": {"retriever_name": "stolen"},
    "/v1/retrievers/{retriever_id}/execute": {"inputs": {"query": "stolen"}},
    "/v1/aliases/{alias_name}/execute": {"inputs": {"query": "stolen"}},
}


def _body(method: str, template: str) -> Any:
    """A valid body, so that only access decides the answer."""
    return VALID_BODIES.get(template, {}) if method in ("POST", "PATCH", "PUT") else None
