"""The webhook suite runs on both stacks: embedded (SQLite + LocalBus) and distributed
(PostgreSQL + Kafka). A ``World`` is one catalog process — store, bus, outbox relay, catalog and
webhook services behind one HTTP app — that a test can restart on the same database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.auth import Permission
from contracts.envelope import Envelope
from libs.auth import Principal
from libs.bus import Bus, publish_envelope
from libs.eventstore import EventStore, open_event_store
from libs.http import install_error_handlers, principal_dependency
from libs.outbox import OutboxRelay
from services.catalog.routes import router as catalog_router
from services.catalog.routes import scope_dependency
from services.catalog.service import CatalogService
from services.catalog.webhooks import RetryPolicy, WebhookService, install
from tests.infra import Stack, stack_of
from tests.webhooks.receiver import Receiver

FAST = RetryPolicy(base_delay=0.02, factor=2.0, max_delay=0.2, max_attempts=5, jitter=0.2)
"""Five attempts within about 0.3 s: the retry tests stay quick."""


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    # A restarted catalog is a new process: in the embedded stack it gets a new in-memory bus.
    async with stack_of(request.param, tmp_path, "webhooks", one_local_bus=False) as made:
        yield made


@dataclass
class World:
    """One running catalog process with webhooks, and the test's view of it."""

    stack: Stack
    store: EventStore
    catalog: CatalogService
    policy: RetryPolicy
    admin_key: str = ""
    organization_id: str = ""
    namespace_id: str = ""
    bus: Bus = field(init=False)
    service: WebhookService = field(init=False)
    app: FastAPI = field(init=False)
    http: httpx.AsyncClient = field(init=False)
    _stop: asyncio.Event = field(init=False)
    _relay: asyncio.Task[None] = field(init=False)

    async def boot(self) -> None:
        """Start the process: a bus, the outbox relay, the HTTP app and the webhook service."""
        self.bus = self.stack.make_bus()
        await self.bus.start()
        await self.bus.ensure_topic(self.stack.topic, partitions=2)
        self._stop = asyncio.Event()
        relay = OutboxRelay(self.store, self.bus, topic=self.stack.topic, poll_interval=0.02)
        self._relay = asyncio.create_task(relay.run(self._stop))
        self.app = FastAPI()
        install_error_handlers(self.app)
        principal = principal_dependency(self.catalog)
        self.app.include_router(catalog_router(self.catalog, principal))
        self.service = await install(
            self.app,
            store=self.store,
            bus=self.bus,
            scope_dependency=scope_dependency(self.catalog, principal),
            policy=self.policy,
            topic=self.stack.topic,
            poll_interval=0.05,
            request_timeout=2.0,
        )
        transport = httpx.ASGITransport(app=self.app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://offshoot.test")

    async def halt(self) -> None:
        """Stop the process (the database stays)."""
        await self.http.aclose()
        await self.service.stop()
        self._stop.set()
        await self._relay
        await self.bus.stop()

    async def restart(self) -> None:
        await self.halt()
        await self.boot()

    # ---- calls ---------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        namespace: str | None = "",
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        namespace = self.namespace_id if namespace == "" else namespace
        if namespace:
            headers["X-Namespace"] = namespace
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def subscribe(
        self, receiver: Receiver, event_types: list[str], *, name: str = "main", **kwargs: Any
    ) -> dict[str, Any]:
        """Create a webhook to ``receiver``'s endpoint ``name`` and give the receiver its secret."""
        created: dict[str, Any] = await self.ok(
            "POST",
            "/v1/webhooks",
            json={"url": receiver.url(name), "event_types": event_types},
            **kwargs,
        )
        receiver.secrets[name] = created["secret"]
        return created

    async def deliveries(self, webhook_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        page = await self.ok("GET", f"/v1/webhooks/{webhook_id}/deliveries", **kwargs)
        results: list[dict[str, Any]] = page["results"]
        return results

    async def emit(
        self, event_type: str, *, namespace_id: str | None = "", data: dict[str, Any] | None = None
    ) -> Envelope:
        """An event of some service, straight onto the bus (as the outbox would publish it)."""
        envelope = Envelope(
            event_id=uuid.uuid4(),
            type=event_type,
            stream_id=f"obj_{uuid.uuid4().hex[:20]}",
            version=1,
            namespace_id=self.namespace_id if namespace_id == "" else namespace_id,
            data=data or {"n": 1},
        )
        return await publish_envelope(self.bus, self.stack.topic, envelope)

    def principal(self, *permissions: Permission) -> Principal:
        return Principal(self.organization_id, "key_test", frozenset(permissions), None)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def open_world(stack: Stack, *, policy: RetryPolicy = FAST) -> World:
    store = await open_event_store(stack.store_url)
    catalog = CatalogService(store)
    await catalog.start()
    world = World(stack, store, catalog, policy)
    organization_id, key = await catalog.bootstrap(f"org-{uuid.uuid4().hex[:6]}")
    world.admin_key, world.organization_id = key.api_key, organization_id
    await world.boot()
    prod = await world.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"}, namespace=None)
    world.namespace_id = prod["namespace_id"]
    return world


@pytest.fixture
async def world(stack: Stack) -> AsyncIterator[World]:
    opened = await open_world(stack)
    yield opened
    await opened.halt()
    await opened.store.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver()
    await started.start()
    yield started
    await started.stop()
