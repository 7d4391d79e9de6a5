"""Namespaces: create, read, patch, delete, clone as a fork, and read as of an earlier position."""

from __future__ import annotations

from tests.catalog.conftest import Api


async def _create(api: Api, name: str, description: str = "") -> dict:
    return await api.ok(
        "POST", "/v1/namespaces", json={"namespace_name": name, "description": description}
    )


async def _clone(api: Api, source: str, name: str) -> dict:
    task = await api.ok("POST", f"/v1/namespaces/{source}/clone", json={"namespace_name": name})
    return await api.wait_task(task["task_id"])


async def test_a_created_namespace_reads_back_by_id_and_by_name(api: Api) -> None:
    created = await _create(api, "prod", "production")

    by_id = await api.ok("GET", f"/v1/namespaces/{created['namespace_id']}")
    by_name = await api.ok("GET", "/v1/namespaces/prod")

    assert by_id == by_name == created
    assert created["namespace_id"].startswith("ns_")
    assert created["description"] == "production"


async def test_namespace_names_are_unique_within_an_organization(api: Api) -> None:
    await _create(api, "prod")

    response = await api.call("POST", "/v1/namespaces", json={"namespace_name": "prod"})

    assert response.status_code == 409
    assert "already exists" in response.json()["error"]


async def test_patch_changes_name_and_description(api: Api) -> None:
    await _create(api, "prod")

    patched = await api.ok(
        "PATCH", "/v1/namespaces/prod", json={"namespace_name": "production", "description": "live"}
    )

    assert (patched["namespace_name"], patched["description"]) == ("production", "live")
    assert (await api.call("GET", "/v1/namespaces/prod")).status_code == 404


async def test_patch_refuses_fields_other_than_name_and_description(api: Api) -> None:
    await _create(api, "prod")

    response = await api.call("PATCH", "/v1/namespaces/prod", json={"parent_namespace_id": "ns_x"})

    assert response.status_code == 422
    assert "parent_namespace_id" in response.json()["error"]


async def test_a_deleted_namespace_is_gone_and_its_name_is_free(api: Api) -> None:
    await _create(api, "prod")

    await api.ok("DELETE", "/v1/namespaces/prod")

    assert (await api.call("GET", "/v1/namespaces/prod")).status_code == 404
    assert (await _create(api, "prod"))["namespace_name"] == "prod"


async def test_a_clone_completes_with_a_mapping_to_new_ids(api: Api) -> None:
    prod = await _create(api, "prod")

    task = await _clone(api, "prod", "staging")

    staging = await api.ok("GET", "/v1/namespaces/staging")
    assert task["status"] == "COMPLETED"
    assert task["result"]["mapping"] == {prod["namespace_id"]: staging["namespace_id"]}
    assert staging["parent_namespace_id"] == prod["namespace_id"]
    assert prod["namespace_id"] not in task["result"]["mapping"].values()


async def test_writes_in_a_clone_never_show_in_its_parent_nor_the_reverse(api: Api) -> None:
    await _create(api, "prod", "v1")
    await _clone(api, "prod", "staging")

    await api.ok("PATCH", "/v1/namespaces/staging", json={"description": "staging edit"})
    await api.ok("PATCH", "/v1/namespaces/prod", json={"description": "prod edit"})

    assert (await api.ok("GET", "/v1/namespaces/prod"))["description"] == "prod edit"
    assert (await api.ok("GET", "/v1/namespaces/staging"))["description"] == "staging edit"


async def test_deleting_the_parent_leaves_the_clone_intact(api: Api) -> None:
    await _create(api, "prod", "v1")
    await _clone(api, "prod", "staging")

    await api.ok("DELETE", "/v1/namespaces/prod")

    assert (await api.ok("GET", "/v1/namespaces/staging"))["namespace_name"] == "staging"


async def test_a_clone_of_a_clone_descends_from_its_own_parent(api: Api) -> None:
    await _create(api, "prod")
    await _clone(api, "prod", "staging")
    staging = await api.ok("GET", "/v1/namespaces/staging")

    task = await _clone(api, "staging", "experiment")

    experiment = await api.ok("GET", "/v1/namespaces/experiment")
    assert task["status"] == "COMPLETED"
    assert experiment["parent_namespace_id"] == staging["namespace_id"]


async def test_cloning_onto_a_taken_name_is_refused(api: Api) -> None:
    await _create(api, "prod")
    await _create(api, "staging")

    response = await api.call(
        "POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"}
    )

    assert response.status_code == 409


async def test_as_of_reads_the_namespace_as_it_was(api: Api) -> None:
    created = await _create(api, "prod", "first")
    await api.ok("PATCH", "/v1/namespaces/prod", json={"description": "second"})

    then = await api.ok("GET", "/v1/namespaces/prod", params={"as_of": created["created_position"]})

    assert then["description"] == "first"
    assert (await api.ok("GET", "/v1/namespaces/prod"))["description"] == "second"


async def test_as_of_beyond_the_head_is_refused(api: Api) -> None:
    await _create(api, "prod")

    response = await api.call("GET", "/v1/namespaces/prod", params={"as_of": 10_000_000})

    assert response.status_code == 422
    assert "as_of" in response.json()["error"]


async def test_a_bad_name_is_refused_naming_the_field(api: Api) -> None:
    response = await api.call("POST", "/v1/namespaces", json={"namespace_name": "Not OK!"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "namespace_name"


async def test_unknown_fields_and_wrong_types_are_refused(api: Api) -> None:
    unknown = await api.call(
        "POST", "/v1/namespaces", json={"namespace_name": "a", "colour": "red"}
    )
    wrong = await api.call("POST", "/v1/namespaces", json={"namespace_name": 42})

    assert unknown.status_code == wrong.status_code == 422
    assert "colour" in unknown.json()["error"]


async def test_malformed_json_is_a_422(api: Api) -> None:
    response = await api.call(
        "POST", "/v1/namespaces", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422


async def test_an_oversized_body_is_refused_with_413_and_writes_nothing(api: Api) -> None:
    await _create(api, "prod")
    bucket = await api.ok("POST", "/v1/buckets", namespace="prod", json={"bucket_name": "b"})
    huge = {"fields": {"text": "x" * (17 * 1024 * 1024)}}

    response = await api.call(
        "POST", f"/v1/buckets/{bucket['bucket_id']}/objects", namespace="prod", json=huge
    )

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]
    listed = await api.ok("GET", f"/v1/buckets/{bucket['bucket_id']}/objects", namespace="prod")
    assert listed["results"] == []


async def test_a_missing_id_is_a_404_naming_it(api: Api) -> None:
    response = await api.call("GET", "/v1/tasks/tsk_00000000000000000000")

    assert response.status_code == 404
    assert "tsk_00000000000000000000" in response.json()["error"]
