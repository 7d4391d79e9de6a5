"""Two workers on one database never send the same attempt twice; secrets never reach other
receivers; and the SDK group drives the routes over real HTTP."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from offshoot.client import Client
from services.catalog.webhooks import Webhooks
from services.catalog.webhooks.worker import DeliveryWorker
from tests.webhooks.conftest import World, eventually
from tests.webhooks.receiver import Receiver


async def test_two_workers_on_one_database_send_each_delivery_once(
    world: World, receiver: Receiver
) -> None:
    hook = await world.subscribe(receiver, ["*"])
    rival = DeliveryWorker(world.store, policy=world.policy, poll_interval=0.01, concurrency=3)
    stop = asyncio.Event()
    running = asyncio.create_task(rival.run(stop))
    try:
        sent = [await world.emit("object.created") for _ in range(30)]

        async def delivered() -> bool:
            found = await world.deliveries(hook["webhook_id"])
            return len(found) == 30 and all(d["status"] == "DELIVERED" for d in found)

        await eventually(delivered, what="30 deliveries")
    finally:
        stop.set()
        await running
    assert receiver.successes() == {str(e.event_id): 1 for e in sent}
    assert len(receiver.hits) == 30


async def test_a_webhook_created_event_reaches_subscribers_without_its_secret(
    world: World, receiver: Receiver
) -> None:
    await world.subscribe(receiver, ["webhook.*"], name="watcher")
    created = await world.subscribe(receiver, ["object.*"], name="other")

    async def seen() -> bool:
        return bool(receiver.at("watcher"))

    await eventually(seen, what="the webhook.created delivery")
    [hit] = receiver.at("watcher")
    assert hit.payload["type"] == "webhook.created"
    assert hit.payload["data"]["webhook_id"] == created["webhook_id"]
    assert "secret" not in hit.payload["data"]
    assert created["secret"] not in hit.body.decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_sdk_group_creates_lists_reads_replays_and_deletes(
    world: World, receiver: Receiver
) -> None:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers only a flag)
        await asyncio.sleep(0.01)
    client = Client(f"http://127.0.0.1:{port}", world.admin_key, namespace=world.namespace_id)
    hooks = Webhooks(client)
    try:
        created = await asyncio.to_thread(hooks.create, receiver.url(), ["object.*"])
        receiver.secrets["main"] = created.secret
        await world.emit("object.created")

        async def delivered() -> bool:
            found = await asyncio.to_thread(hooks.deliveries, created.webhook_id)
            return bool(found) and found[0].status == "DELIVERED"

        await eventually(delivered, what="a delivery")
        [delivery] = await asyncio.to_thread(
            hooks.deliveries, created.webhook_id, status="DELIVERED"
        )
        replayed = await asyncio.to_thread(hooks.replay, delivery.delivery_id)
        listed = await asyncio.to_thread(hooks.list)
        fetched = await asyncio.to_thread(hooks.get, created.webhook_id)
        await asyncio.to_thread(hooks.delete, created.webhook_id)
        after = await asyncio.to_thread(hooks.list)
    finally:
        await asyncio.to_thread(client.close)
        server.should_exit = True
        await serving
    assert created.secret.startswith("whsec_")
    assert replayed.replays == 1
    assert [w.webhook_id for w in listed] == [created.webhook_id] == [fetched.webhook_id]
    assert after == []
    assert receiver.hits[0].verified
