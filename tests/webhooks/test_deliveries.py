"""Deliveries: signed, retried with backoff until 2xx or dead, durable across a restart, deduped,
replayable — each against a real HTTP receiver on 127.0.0.1, on both stacks."""

from __future__ import annotations

from typing import Any

from services.catalog.webhooks import RetryPolicy
from tests.webhooks.conftest import Stack, World, eventually, open_world
from tests.webhooks.receiver import Receiver, always, fail_first


async def _settled(world: World, webhook_id: str, count: int, status: str) -> list[dict[str, Any]]:
    """Wait until the webhook has ``count`` deliveries, all in ``status``; return them."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = await world.deliveries(webhook_id)
        return len(found) == count and all(d["status"] == status for d in found)

    await eventually(check, what=f"{count} {status} deliveries")
    return found


async def test_a_delivery_is_signed_and_the_receiver_verifies_it(
    world: World, receiver: Receiver
) -> None:
    hook = await world.subscribe(receiver, ["object.*"])

    sent = await world.emit("object.created", data={"object_id": "obj_1", "title": "hello"})

    [delivery] = await _settled(world, hook["webhook_id"], 1, "DELIVERED")
    [hit] = receiver.at()
    assert hit.verified
    assert hit.headers["x-offshoot-signature"].startswith("sha256=")
    assert hit.event_id == str(sent.event_id)
    assert hit.payload == {
        "event_id": str(sent.event_id),
        "type": "object.created",
        "namespace_id": world.namespace_id,
        "resource": sent.stream_id,
        "occurred_at": sent.occurred_at.isoformat(),
        "data": {"object_id": "obj_1", "title": "hello"},
    }
    assert (delivery["attempts"], delivery["last_error"]) == (1, None)
    assert delivery["history"][0]["status_code"] == 200


async def test_an_event_stored_by_the_catalog_reaches_the_receiver_through_the_outbox(
    world: World, receiver: Receiver
) -> None:
    hook = await world.subscribe(receiver, ["namespace.*"])

    await world.ok("PATCH", f"/v1/namespaces/{world.namespace_id}", json={"description": "live"})

    [delivery] = await _settled(world, hook["webhook_id"], 1, "DELIVERED")
    [hit] = receiver.at()
    assert hit.verified
    assert hit.payload["type"] == "namespace.updated"
    assert hit.payload["resource"] == world.namespace_id
    assert hit.payload["data"]["description"] == "live"
    assert delivery["event_type"] == "namespace.updated"


async def test_a_receiver_failing_three_times_gets_one_success_per_event_after_four_attempts(
    world: World, receiver: Receiver
) -> None:
    receiver.respond = fail_first(3)
    hook = await world.subscribe(receiver, ["*"])

    sent = [await world.emit("object.created") for _ in range(3)]

    deliveries = await _settled(world, hook["webhook_id"], 3, "DELIVERED")
    assert receiver.successes() == {str(e.event_id): 1 for e in sent}
    assert all(h.verified for h in receiver.hits)
    for delivery in deliveries:
        assert delivery["attempts"] == 4
        assert [a["status_code"] for a in delivery["history"]] == [500, 500, 500, 200]
        assert delivery["history"][0]["error"] == "HTTP 500: receiver says no"
        assert delivery["last_error"] is None
        assert delivery["delivered_at"] is not None


async def test_a_receiver_that_always_fails_ends_dead_with_the_last_error(
    world: World, receiver: Receiver
) -> None:
    receiver.respond = always(503)
    receiver.error_body = b"down for maintenance"
    hook = await world.subscribe(receiver, ["object.created"])

    sent = await world.emit("object.created")

    [delivery] = await _settled(world, hook["webhook_id"], 1, "DEAD")
    assert delivery["attempts"] == world.policy.max_attempts == 5
    assert delivery["last_error"] == "HTTP 503: down for maintenance"
    assert delivery["last_status_code"] == 503
    assert delivery["next_attempt_at"] is None
    assert len(receiver.at()) == 5
    assert {h.event_id for h in receiver.at()} == {str(sent.event_id)}
    dead = await world.deliveries(hook["webhook_id"], params={"status": "DEAD"})
    assert [d["delivery_id"] for d in dead] == [delivery["delivery_id"]]
    assert await world.deliveries(hook["webhook_id"], params={"status": "PENDING"}) == []


async def test_an_unreachable_receiver_is_retried_with_the_connection_error(
    world: World, receiver: Receiver
) -> None:
    hook = await world.subscribe(receiver, ["*"])
    await receiver.stop()  # nothing listens on that port any more

    await world.emit("object.created")

    [delivery] = await _settled(world, hook["webhook_id"], 1, "DEAD")
    assert delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("ConnectError")


async def test_deliveries_survive_a_restart_in_the_middle_of_retries(
    stack: Stack, receiver: Receiver
) -> None:
    slow = RetryPolicy(base_delay=0.1, factor=1.5, max_delay=0.3, max_attempts=100)
    world = await open_world(stack, policy=slow)
    try:
        receiver.respond = always(500)
        hook = await world.subscribe(receiver, ["object.*"])
        sent = [await world.emit("object.created") for _ in range(3)]

        async def retrying() -> bool:
            found = await world.deliveries(hook["webhook_id"])
            return len(found) == 3 and all(d["attempts"] >= 2 for d in found)

        await eventually(retrying, what="three deliveries retrying")
        await world.restart()  # a new bus, relay and WebhookService on the same database
        receiver.respond = always(200)
        later = await world.emit("object.updated")

        deliveries = await _settled(world, hook["webhook_id"], 4, "DELIVERED")
    finally:
        await world.halt()
        await world.store.close()
    expected = {str(e.event_id) for e in [*sent, later]}
    assert set(receiver.successes()) == expected
    assert all(h.verified for h in receiver.hits)
    assert {d["event_id"] for d in deliveries} == expected
    assert all(d["attempts"] >= 3 for d in deliveries if d["event_id"] != str(later.event_id))


async def test_a_duplicated_event_makes_one_delivery(world: World, receiver: Receiver) -> None:
    hook = await world.subscribe(receiver, ["*"])
    sent = await world.emit("object.created")
    await world.bus.publish(  # the same envelope again, as a relay that crashed would resend it
        world.stack.topic, sent.model_dump_json().encode(), key=world.namespace_id
    )
    await _settled(world, hook["webhook_id"], 1, "DELIVERED")

    added = await world.service.dispatcher.handle(sent)  # a consumer that lost its memory

    assert added == 0
    await _settled(world, hook["webhook_id"], 1, "DELIVERED")
    assert receiver.successes() == {str(sent.event_id): 1}


async def test_replay_sends_a_delivery_again_with_its_attempts_reset(
    world: World, receiver: Receiver
) -> None:
    receiver.respond = always(500)
    hook = await world.subscribe(receiver, ["*"])
    sent = await world.emit("object.created")
    [dead] = await _settled(world, hook["webhook_id"], 1, "DEAD")
    receiver.respond = always(204)

    queued = await world.ok("POST", f"/v1/webhooks/deliveries/{dead['delivery_id']}/replay")

    assert (queued["status"], queued["attempts"], queued["replays"]) == ("PENDING", 0, 1)
    [delivery] = await _settled(world, hook["webhook_id"], 1, "DELIVERED")
    assert (delivery["attempts"], delivery["replays"], delivery["last_error"]) == (1, 1, None)
    assert [(a["replay"], a["status_code"]) for a in delivery["history"]][-2:] == [
        (0, 500),
        (1, 204),
    ]
    assert len(delivery["history"]) == 6
    assert receiver.successes() == {str(sent.event_id): 1}

    await world.ok("POST", f"/v1/webhooks/deliveries/{dead['delivery_id']}/replay")

    async def twice() -> bool:
        return receiver.successes() == {str(sent.event_id): 2}

    await eventually(twice, what="a second successful delivery")


async def test_a_deleted_webhook_gets_nothing_more_and_its_pending_deliveries_die(
    world: World, receiver: Receiver
) -> None:
    receiver.respond = always(500)
    doomed = await world.subscribe(receiver, ["*"], name="doomed")
    await world.emit("object.created")

    async def failed_once() -> bool:
        found = await world.deliveries(doomed["webhook_id"])
        return bool(found) and found[0]["attempts"] >= 1

    await eventually(failed_once, what="a first failed attempt")

    await world.ok("DELETE", f"/v1/webhooks/{doomed['webhook_id']}")
    receiver.respond = always(200)
    witness = await world.subscribe(receiver, ["*"], name="witness")
    after = await world.emit("object.created")  # same key, so it comes after the deletion
    await _settled(world, witness["webhook_id"], 1, "DELIVERED")

    response = await world.call("GET", f"/v1/webhooks/{doomed['webhook_id']}/deliveries")
    assert response.status_code == 404
    async with world.store.transaction() as tx:
        rows = await tx.fetch(
            "SELECT status, last_error FROM whk_deliveries WHERE webhook_id = $1",
            doomed["webhook_id"],
        )
    assert [(r["status"], r["last_error"]) for r in rows] == [
        ("DEAD", "webhook deleted before delivery")
    ]
    assert str(after.event_id) not in {h.event_id for h in receiver.at("doomed")}
