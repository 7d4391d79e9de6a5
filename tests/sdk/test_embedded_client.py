"""The SDK on the embedded default: the seed's clone workflow, end to end, with attribute access."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.errors import ConflictError, NotFoundError
from offshoot import Client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with Client.embedded(tmp_path_factory.mktemp("embedded")) as embedded:
        yield embedded


def test_the_seed_clone_workflow(client: Client) -> None:
    client.namespaces.create("ns-prod")
    prod = client.with_namespace("ns-prod")
    bucket = prod.buckets.create("listings", unique_key="sku")
    prod.objects.create(bucket.bucket_id, {"sku": "a", "title": "first"})

    task = client.namespaces.clone(
        namespace_identifier="ns-prod",
        body={
            "namespace_name": "listings_staging",
            "include_resources": {"collections": True, "retrievers": True, "taxonomies": False},
        },
    )
    result = client.tasks.wait(task.task_id)

    staging = client.with_namespace("listings_staging")
    staging_bucket = result.result["mapping"][bucket.bucket_id]
    assert result.status == "COMPLETED"
    assert [o["fields"]["title"] for o in staging.objects.list(staging_bucket).results] == ["first"]


def test_api_refusals_raise_typed_errors(client: Client) -> None:
    client.namespaces.create("twice")

    with pytest.raises(ConflictError, match="already exists"):
        client.namespaces.create("twice")
    with pytest.raises(NotFoundError):
        client.namespaces.get("never")


def test_a_restarted_embedded_client_sees_the_same_data(tmp_path: Path) -> None:
    with Client.embedded(tmp_path) as first:
        first.namespaces.create("kept")

    with Client.embedded(tmp_path) as second:
        assert [n.namespace_name for n in second.namespaces.list()] == ["kept"]


def test_search_through_an_alias_finds_an_abstract_by_its_title(client: Client) -> None:
    from offshoot.demo import papers, scifact

    client.namespaces.create("search")
    ns = client.with_namespace("search")
    bucket, collection = papers(ns)
    rows = list(scifact(20))
    ns.objects.create_batch(bucket.bucket_id, [{"fields": row} for row in rows])
    deadline = time.monotonic() + 60
    while len(ns.documents.list(collection.collection_id, limit=100).results) < 20:
        assert time.monotonic() < deadline, "documents never arrived"
        time.sleep(0.1)
    search = {"stage_name": "search", "stage_type": "filter", "config": {"stage_id": "feature_search", "parameters": {
        "searches": [{"feature_uri": collection.feature_uri, "query": "{{INPUT.query}}", "top_k": 5}]}}}  # fmt: skip
    retriever = ns.retrievers.create(
        "dense", collection_identifiers=["abstracts"], stages=[search],
        input_schema={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    )  # fmt: skip
    ns.aliases.create("search", retriever.retriever_id)

    result = ns.aliases.execute("search", {"query": rows[7]["title"]})

    assert result.served_by == retriever.retriever_id
    assert result.results[0]["payload"]["_id"] == rows[7]["_id"]
