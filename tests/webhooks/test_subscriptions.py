"""Subscriptions: create/list/get/delete as namespace resources, event type wildcards, namespace
and organization boundaries (clones inherit nothing), permissions and input validation."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.auth import Permission
from contracts.namespaces import CloneNamespace
from tests.webhooks.conftest import World, eventually
from tests.webhooks.receiver import Receiver


async def test_create_returns_the_secret_once_and_reads_never_show_it(
    world: World, receiver: Receiver
) -> None:
    created = await world.subscribe(receiver, ["namespace.*", "object.created"])

    fetched = await world.ok("GET", f"/v1/webhooks/{created['webhook_id']}")
    listed = await world.ok("GET", "/v1/webhooks")

    assert created["webhook_id"].startswith("whk_")
    assert created["secret"].startswith("whsec_")
    assert created["namespace_id"] == world.namespace_id
    assert created["event_types"] == ["namespace.*", "object.created"]
    assert {k: v for k, v in created.items() if k != "secret"} == fetched
    assert "secret" not in fetched
    assert listed == {"results": [fetched]}


async def test_a_secret_given_at_creation_signs_the_deliveries(
    world: World, receiver: Receiver
) -> None:
    secret = "a-shared-secret-of-the-receiver"
    created = await world.ok(
        "POST",
        "/v1/webhooks",
        json={"url": receiver.url(), "event_types": ["*"], "secret": secret},
    )
    receiver.secrets["main"] = secret

    await world.emit("object.created")

    await eventually(lambda: _hit(receiver), what="a delivery")
    assert created["secret"] == secret
    assert receiver.hits[0].verified


async def _hit(receiver: Receiver, name: str = "main") -> bool:
    return bool(receiver.at(name))


async def test_a_retried_create_with_the_same_command_id_makes_one_webhook(
    world: World, receiver: Receiver
) -> None:
    body = {"url": receiver.url(), "event_types": ["*"], "command_id": str(uuid.uuid4())}

    first = await world.ok("POST", "/v1/webhooks", json=body)
    second = await world.ok("POST", "/v1/webhooks", json=body)

    assert first == second
    assert len((await world.ok("GET", "/v1/webhooks"))["results"]) == 1


async def test_a_deleted_webhook_is_gone(world: World, receiver: Receiver) -> None:
    created = await world.subscribe(receiver, ["*"])

    await world.ok("DELETE", f"/v1/webhooks/{created['webhook_id']}")

    assert (await world.call("GET", f"/v1/webhooks/{created['webhook_id']}")).status_code == 404
    assert (await world.call("DELETE", f"/v1/webhooks/{created['webhook_id']}")).status_code == 404
    assert (await world.ok("GET", "/v1/webhooks"))["results"] == []


async def test_event_type_patterns_select_what_each_webhook_receives(
    world: World, receiver: Receiver
) -> None:
    patterns = {
        "objects": ["object.*"],
        "exact": ["object.created"],
        "tasks": ["task.*", "namespace.updated"],
        "prefix": ["obj.*"],  # not a prefix of "object.": segments, not characters
        "everything": ["*"],  # last: it would receive the other webhooks' webhook.created
    }
    hooks = {n: await world.subscribe(receiver, p, name=n) for n, p in patterns.items()}
    types = ["object.created", "object.deleted", "task.finished", "namespace.updated", "objects"]
    for event_type in types:
        await world.emit(event_type)
    await world.emit("object.created", namespace_id=None)  # organization-level: no namespace

    expected = {
        "objects": ["object.created", "object.deleted"],
        "everything": types,
        "exact": ["object.created"],
        "tasks": ["task.finished", "namespace.updated"],
        "prefix": [],
    }

    async def settled() -> bool:
        got = {
            n: sorted(d["event_type"] for d in await world.deliveries(h["webhook_id"]))
            for n, h in hooks.items()
        }
        return got == {n: sorted(t) for n, t in expected.items()} and len(receiver.hits) == 10

    await eventually(settled, what="every matching delivery")
    assert all(hit.verified for hit in receiver.hits)


async def test_a_webhook_sees_only_its_namespace_and_a_clone_inherits_no_webhook(
    world: World, receiver: Receiver
) -> None:
    prod_hook = await world.subscribe(receiver, ["*"])
    task = await world.catalog.clone_namespace(
        world.principal(Permission.ADMIN),
        CloneNamespace(namespace_id="prod", namespace_name="staging"),
    )
    staging = task["resource_id"]

    assert (await world.ok("GET", "/v1/webhooks", namespace=staging))["results"] == []
    missing = await world.call("GET", f"/v1/webhooks/{prod_hook['webhook_id']}", namespace=staging)
    assert missing.status_code == 404
    staging_hook = await world.subscribe(receiver, ["*"], name="staging", namespace=staging)
    in_staging = await world.emit("object.created", namespace_id=staging)
    in_prod = await world.emit("object.created")

    async def both() -> bool:
        return bool(receiver.at("main")) and bool(receiver.at("staging"))

    await eventually(both, what="one delivery in each namespace")
    assert {h.event_id for h in receiver.at("main")} == {str(in_prod.event_id)}
    assert {h.event_id for h in receiver.at("staging")} == {str(in_staging.event_id)}
    assert [w["webhook_id"] for w in (await world.ok("GET", "/v1/webhooks"))["results"]] == [
        prod_hook["webhook_id"]
    ]
    assert staging_hook["namespace_id"] == staging


async def test_another_organization_sees_a_404_everywhere(world: World, receiver: Receiver) -> None:
    hook = await world.subscribe(receiver, ["*"])
    await world.emit("object.created")
    await eventually(lambda: _hit(receiver), what="a delivery")
    [delivery] = await world.deliveries(hook["webhook_id"])
    _, other_key = await world.catalog.create_organization("rival")
    rival = await world.ok(
        "POST", "/v1/namespaces", json={"namespace_name": "rival"}, namespace=None,
        key=other_key.api_key,
    )  # fmt: skip
    as_rival: dict[str, Any] = {"key": other_key.api_key, "namespace": rival["namespace_id"]}

    for method, path in [
        ("GET", f"/v1/webhooks/{hook['webhook_id']}"),
        ("DELETE", f"/v1/webhooks/{hook['webhook_id']}"),
        ("GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries"),
        ("POST", f"/v1/webhooks/deliveries/{delivery['delivery_id']}/replay"),
    ]:
        response = await world.call(method, path, **as_rival)
        assert response.status_code == 404, (method, path, response.text)
    # ... and naming our namespace does not help: the key cannot see it.
    response = await world.call("GET", "/v1/webhooks", key=other_key.api_key)
    assert response.status_code == 404
    assert (await world.ok("GET", "/v1/webhooks", **as_rival))["results"] == []


async def test_writes_need_the_write_permission_and_reads_need_read(
    world: World, receiver: Receiver
) -> None:
    hook = await world.subscribe(receiver, ["*"])
    reader = await world.ok(
        "POST", "/v1/keys", json={"name": "ro", "permissions": ["read"]}, namespace=None
    )
    key = reader["api_key"]

    assert (await world.call("GET", "/v1/webhooks", key=key)).status_code == 200
    assert (
        await world.call("GET", f"/v1/webhooks/{hook['webhook_id']}", key=key)
    ).status_code == 200
    create = await world.call(
        "POST", "/v1/webhooks", key=key, json={"url": receiver.url(), "event_types": ["*"]}
    )
    delete = await world.call("DELETE", f"/v1/webhooks/{hook['webhook_id']}", key=key)
    assert (create.status_code, delete.status_code) == (403, 403)
    assert "write" in create.json()["error"]


async def test_the_namespace_header_is_required(world: World) -> None:
    response = await world.call("GET", "/v1/webhooks", namespace=None)

    assert response.status_code == 422
    assert "X-Namespace" in response.json()["error"]


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://example.com/hook", "event_types": ["*"]}, "url"),
    ({"url": "not a url", "event_types": ["*"]}, "url"),
    ({"url": "https://user:pw@example.com/", "event_types": ["*"]}, "url"),
    ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
    ({"url": "https://example.com/hook", "event_types": ["Object Created"]}, "event_types.0"),
    ({"url": "https://example.com/hook", "event_types": ["a.*.b"]}, "event_types.0"),
    ({"url": "https://example.com/hook", "event_types": ["*"], "secret": "short"}, "secret"),
    ({"url": "https://example.com/hook", "event_types": ["*"], "surprise": 1}, "surprise"),
    ({"event_types": ["*"]}, "url"),
]


async def test_bad_input_is_a_422_naming_the_field(world: World) -> None:
    for body, field in BAD_BODIES:
        response = await world.call("POST", "/v1/webhooks", json=body)

        assert response.status_code == 422, (body, response.text)
        assert field in [d["field"] for d in response.json()["detail"]], (body, response.text)
        assert field.split(".")[0] in response.json()["error"]
    assert (await world.ok("GET", "/v1/webhooks"))["results"] == []


async def test_unknown_delivery_status_filter_is_a_422(world: World, receiver: Receiver) -> None:
    hook = await world.subscribe(receiver, ["*"])

    response = await world.call(
        "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", params={"status": "LOST"}
    )

    assert response.status_code == 422
    assert "status" in response.json()["error"]
