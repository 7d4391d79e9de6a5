"""Buckets, objects and collections: schema validation, upserts, batches, immutable cores, and
isolation between a namespace and its clones."""

from __future__ import annotations

from typing import Any

from tests.catalog.conftest import Api

SCHEMA = {
    "type": "object",
    "properties": {
        "_id": {"type": "string"},
        "title": {"type": "string"},
        "year": {"type": "integer"},
    },
    "required": ["_id", "title"],
}
MINILM = {"feature_extractor_name": "minilm", "version": "v1"}
STATIC = {"feature_extractor_name": "minilm-static", "version": "v1"}


async def _namespace(api: Api, name: str = "prod") -> str:
    created = await api.ok("POST", "/v1/namespaces", json={"namespace_name": name})
    return str(created["namespace_id"])


async def _bucket(api: Api, ns: str, **extra: Any) -> dict[str, Any]:
    body = {"bucket_name": "papers", "bucket_schema": SCHEMA, **extra}
    result: dict[str, Any] = await api.ok("POST", "/v1/buckets", namespace=ns, json=body)
    return result


async def _object(api: Api, ns: str, bucket: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = await api.ok(
        "POST", f"/v1/buckets/{bucket}/objects", namespace=ns, json={"fields": fields}
    )
    return result


async def _collection(
    api: Api, ns: str, bucket_id: str, name: str, extractor: dict[str, str]
) -> dict[str, Any]:
    body = {
        "collection_name": name,
        "source": {"type": "bucket", "bucket_id": bucket_id},
        "feature_extractor": extractor,
    }
    result: dict[str, Any] = await api.ok("POST", "/v1/collections", namespace=ns, json=body)
    return result


async def _titles(api: Api, ns: str, bucket: str) -> list[str]:
    page = await api.ok(
        "GET", f"/v1/buckets/{bucket}/objects", namespace=ns, params={"limit": 1000}
    )
    return sorted(o["fields"]["title"] for o in page["results"])


async def _clone(api: Api, source: str, name: str, **include: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"namespace_name": name}
    if include:
        body["include_resources"] = include
    task = await api.ok("POST", f"/v1/namespaces/{source}/clone", json=body)
    return await api.wait_task(task["task_id"])


async def test_an_object_that_breaks_the_bucket_schema_is_refused_with_its_path(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)

    response = await api.call(
        "POST",
        f"/v1/buckets/{bucket['bucket_id']}/objects",
        namespace=ns,
        json={"fields": {"_id": "1", "title": "t", "year": "old"}},
    )

    assert response.status_code == 422
    assert "fields.year: 'old' is not of type 'integer'" in response.json()["error"]


async def test_an_invalid_json_schema_is_refused(api: Api) -> None:
    ns = await _namespace(api)

    response = await api.call(
        "POST",
        "/v1/buckets",
        namespace=ns,
        json={"bucket_name": "b", "bucket_schema": {"type": "nope"}},
    )

    assert response.status_code == 422
    assert "bucket_schema" in response.json()["error"]


async def test_a_batch_stores_the_valid_objects_and_reports_each_item(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)

    result = await api.ok(
        "POST", f"/v1/buckets/{bucket['bucket_id']}/objects/batch", namespace=ns,
        json={"objects": [{"fields": {"_id": "1", "title": "a"}}, {"fields": {"_id": "2"}}, {"fields": {"_id": "3", "title": "c"}}]},
    )  # fmt: skip

    assert (result["created"], result["failed"]) == (2, 1)
    assert (
        result["results"][1]["status"] == "FAILED"
        and "'title' is a required property" in result["results"][1]["error"]
    )
    assert await _titles(api, ns, bucket["bucket_id"]) == ["a", "c"]


async def test_a_unique_key_makes_a_second_write_replace_the_first(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns, unique_key="_id")

    await _object(api, ns, bucket["bucket_id"], _id="1", title="first")
    await _object(api, ns, bucket["bucket_id"], _id="1", title="second")

    assert await _titles(api, ns, bucket["bucket_id"]) == ["second"]


async def test_objects_page_in_a_stable_order(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    for n in range(5):
        await _object(api, ns, bucket["bucket_id"], _id=str(n), title=f"t{n}")

    first = await api.ok(
        "GET", f"/v1/buckets/{bucket['bucket_id']}/objects", namespace=ns, params={"limit": 3}
    )
    second = await api.ok(
        "GET",
        f"/v1/buckets/{bucket['bucket_id']}/objects",
        namespace=ns,
        params={"limit": 3, "offset": 3},
    )

    assert first["has_more"] and not second["has_more"]
    ids = [o["object_id"] for o in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 5


async def test_a_clone_sees_the_parents_objects_under_its_own_bucket_id(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    await _object(api, ns, bucket["bucket_id"], _id="1", title="shared")

    task = await _clone(api, "prod", "staging")
    staging_bucket = task["result"]["mapping"][bucket["bucket_id"]]

    assert staging_bucket != bucket["bucket_id"] and staging_bucket.startswith("bkt_")
    assert await _titles(api, "staging", staging_bucket) == ["shared"]
    assert (await api.ok("GET", f"/v1/buckets/{staging_bucket}", namespace="staging"))[
        "bucket_name"
    ] == "papers"


async def test_object_writes_never_cross_between_a_namespace_and_its_clone(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    kept = await _object(api, ns, bucket["bucket_id"], _id="1", title="before")
    task = await _clone(api, "prod", "staging")
    staging_bucket = task["result"]["mapping"][bucket["bucket_id"]]

    await _object(api, "staging", staging_bucket, _id="2", title="staging only")
    await _object(api, ns, bucket["bucket_id"], _id="3", title="prod only")
    await api.ok("DELETE", f"/v1/objects/{kept['object_id']}", namespace=ns)

    assert await _titles(api, "prod", bucket["bucket_id"]) == ["prod only"]
    assert await _titles(api, "staging", staging_bucket) == ["before", "staging only"]


async def test_deleting_an_inherited_object_in_a_clone_leaves_the_parent_intact(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    shared = await _object(api, ns, bucket["bucket_id"], _id="1", title="shared")
    task = await _clone(api, "prod", "staging")
    staging_bucket = task["result"]["mapping"][bucket["bucket_id"]]

    await api.ok("DELETE", f"/v1/objects/{shared['object_id']}", namespace="staging")

    assert await _titles(api, "staging", staging_bucket) == []
    assert await _titles(api, "prod", bucket["bucket_id"]) == ["shared"]


async def test_a_clone_of_a_clone_inherits_through_both(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    await _object(api, ns, bucket["bucket_id"], _id="1", title="from prod")
    first = await _clone(api, "prod", "staging")
    staging_bucket = first["result"]["mapping"][bucket["bucket_id"]]
    await _object(api, "staging", staging_bucket, _id="2", title="from staging")

    second = await _clone(api, "staging", "experiment")
    experiment_bucket = second["result"]["mapping"][staging_bucket]

    assert await _titles(api, "experiment", experiment_bucket) == ["from prod", "from staging"]
    assert experiment_bucket not in (bucket["bucket_id"], staging_bucket)


async def test_the_mapping_covers_every_cloned_resource_and_nothing_points_back(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    collection = await _collection(api, ns, bucket["bucket_id"], "docs", MINILM)

    task = await _clone(api, "prod", "staging")
    mapping = task["result"]["mapping"]
    cloned = await api.ok(
        "GET", f"/v1/collections/{mapping[collection['collection_id']]}", namespace="staging"
    )

    assert set(mapping) == {ns, bucket["bucket_id"], collection["collection_id"]}
    assert cloned["source"]["bucket_id"] == mapping[bucket["bucket_id"]]
    assert not set(mapping) & {cloned["collection_id"], cloned["source"]["bucket_id"]}


async def test_a_clone_without_collections_has_none(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    await _collection(api, ns, bucket["bucket_id"], "docs", MINILM)

    await _clone(api, "prod", "staging", collections=False)

    assert (await api.ok("GET", "/v1/collections", namespace="staging"))["results"] == []
    assert len((await api.ok("GET", "/v1/collections", namespace="prod"))["results"]) == 1


async def test_a_collection_resolves_its_extractor_to_a_feature_uri(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)

    collection = await _collection(api, ns, bucket["bucket_id"], "docs", MINILM)

    assert collection["feature_uri"] == "offshoot://minilm@v1/text_embedding"
    assert collection["dimensions"] == 384 and collection["status"] == "READY"


async def test_an_unknown_extractor_is_refused_naming_it(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)

    response = await api.call(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "docs", "source": {"type": "bucket", "bucket_id": bucket["bucket_id"]},
              "feature_extractor": {"feature_extractor_name": "nope", "version": "v1"}},
    )  # fmt: skip

    assert response.status_code == 404
    assert "nope" in response.json()["error"]


async def test_patching_a_collections_extractor_is_a_409_that_says_to_clone(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    collection = await _collection(api, ns, bucket["bucket_id"], "docs", MINILM)

    refused = await api.call(
        "PATCH",
        f"/v1/collections/{collection['collection_id']}",
        namespace=ns,
        json={"feature_extractor": STATIC},
    )
    renamed = await api.ok(
        "PATCH",
        f"/v1/collections/{collection['collection_id']}",
        namespace=ns,
        json={"collection_name": "docs2", "tags": ["a"]},
    )

    assert refused.status_code == 409 and "clone the collection" in refused.json()["error"]
    assert (renamed["collection_name"], renamed["tags"]) == ("docs2", ["a"])


async def test_a_collection_clone_with_the_same_extractor_shares_vectors_and_another_needs_a_trigger(
    api: Api,
) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    collection = await _collection(api, ns, bucket["bucket_id"], "docs", STATIC)

    same = await api.ok(
        "POST",
        f"/v1/collections/{collection['collection_id']}/clone",
        namespace=ns,
        json={"collection_name": "same"},
    )
    other = await api.ok(
        "POST",
        f"/v1/collections/{collection['collection_id']}/clone",
        namespace=ns,
        json={"collection_name": "other", "feature_extractor": MINILM},
    )
    trigger = await api.ok(
        "POST", f"/v1/collections/{other['collection_id']}/trigger", namespace=ns
    )

    assert (same["status"], same["shares_vectors_with"]) == ("READY", collection["collection_id"])
    assert (other["status"], other["shares_vectors_with"]) == ("NEEDS_TRIGGER", None)
    assert other["feature_uri"] == "offshoot://minilm@v1/text_embedding"
    assert trigger["batch_id"].startswith("bat_") and trigger["task_id"].startswith("tsk_")


async def test_a_collection_that_feeds_another_is_not_deleted_without_force(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    upstream = await _collection(api, ns, bucket["bucket_id"], "up", STATIC)
    await api.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "down", "source": {"type": "collection", "collection_id": upstream["collection_id"]}, "feature_extractor": STATIC},
    )  # fmt: skip

    refused = await api.call("DELETE", f"/v1/collections/{upstream['collection_id']}", namespace=ns)
    forced = await api.call(
        "DELETE",
        f"/v1/collections/{upstream['collection_id']}",
        namespace=ns,
        params={"force": "true"},
    )

    assert refused.status_code == 409 and "down" in refused.json()["error"]
    assert forced.status_code == 204


async def test_namespace_scoped_routes_need_x_namespace(api: Api) -> None:
    response = await api.call("GET", "/v1/buckets")

    assert response.status_code == 422
    assert "X-Namespace" in response.json()["error"]


async def test_objects_can_be_listed_as_of_an_earlier_position(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    first = await _object(api, ns, bucket["bucket_id"], _id="1", title="first")
    position = await api.runtime.store.head_position()
    await _object(api, ns, bucket["bucket_id"], _id="2", title="second")
    await api.ok("DELETE", f"/v1/objects/{first['object_id']}", namespace=ns)

    then = await api.ok(
        "GET",
        f"/v1/buckets/{bucket['bucket_id']}/objects",
        namespace=ns,
        params={"as_of": position},
    )

    assert [o["fields"]["title"] for o in then["results"]] == ["first"]
    assert await _titles(api, ns, bucket["bucket_id"]) == ["second"]


async def test_objects_keep_their_ids_in_a_clone_and_page_through_to_the_end(api: Api) -> None:
    ns = await _namespace(api)
    bucket = await _bucket(api, ns)
    created = [
        await _object(api, ns, bucket["bucket_id"], _id=str(n), title=f"t{n}") for n in range(5)
    ]
    task = await _clone(api, "prod", "staging")
    staging_ns = task["result"]["namespace_id"]
    staging_bucket = task["result"]["mapping"][bucket["bucket_id"]]

    listed = await api.ok("GET", f"/v1/buckets/{staging_bucket}/objects", namespace="staging")
    pages, after = [], None
    while page := await api.runtime.resources.bucket_objects(
        namespace_id=staging_ns, bucket_id=staging_bucket, after=after, limit=2
    ):
        pages.append([o.object_id for o in page])
        after = page[-1].object_id
        assert len(pages) <= 3, "keyset paging must end"

    assert sorted(o["object_id"] for o in listed["results"]) == sorted(
        o["object_id"] for o in created
    )
    assert [i for p in pages for i in p] == sorted(o["object_id"] for o in created)
