"""The composition root: every service wired to its adapters, behind one HTTP app.

``Runtime.open(data_dir=...)`` is the embedded default (SQLite stores, the in-process bus, no
servers); ``Runtime.open(store_url=..., bus_url=...)`` runs the same services on PostgreSQL and
Kafka. Only adapters differ, so one test suite runs on both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from contracts import topics
from contracts.envelope import Envelope
from contracts.namespaces import NamespaceForkAcknowledged
from libs.bus import Bus, consume_envelopes, open_bus
from libs.errors import InvalidInputError
from libs.eventstore import EventStore, open_event_store
from libs.http import BodyLimit, install_error_handlers, principal_dependency
from libs.outbox import OutboxRelay
from services.catalog.commands import CommandGateway
from services.catalog.resource_routes import resource_router
from services.catalog.resources import ResourceService
from services.catalog.routes import router as catalog_router
from services.catalog.routes import scope_dependency
from services.catalog.service import CatalogService
from services.catalog.webhooks import WebhookService
from services.catalog.webhooks import install as install_webhooks

DEFAULT_MAX_BODY = 16 * 1024 * 1024


def _embedded_store_url(data_dir: Path | None) -> str:
    assert data_dir is not None  # checked by the caller
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir.resolve() / 'catalog.sqlite3'}"


class Runtime:
    def __init__(
        self,
        *,
        store: EventStore,
        bus: Bus,
        max_body_bytes: int,
        fork_participants: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.bus = bus
        self.catalog = CatalogService(store, fork_participants=fork_participants)
        self.app = FastAPI(title="Offshoot", version="1")
        install_error_handlers(self.app)
        principal = principal_dependency(self.catalog)
        self.resources = ResourceService(self.catalog)
        self.commands = CommandGateway(self.catalog, self.resources)
        self.app.include_router(catalog_router(self.catalog, principal))
        self._scope = scope_dependency(self.catalog, principal)
        self.app.include_router(resource_router(self.resources, self._scope))
        self.webhooks: WebhookService | None = None
        self.asgi = BodyLimit(self.app, max_bytes=max_body_bytes)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        *,
        data_dir: Path | None = None,
        store_url: str | None = None,
        bus_url: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        fork_participants: Sequence[str] = (),
    ) -> Runtime:
        """``fork_participants``: services whose acknowledgement a namespace clone waits for."""
        if (data_dir is None) == (store_url is None):
            raise InvalidInputError("give either a data directory (embedded) or a store URL")
        store = await open_event_store(store_url or _embedded_store_url(data_dir))
        bus = open_bus(bus_url or "memory://")
        runtime = cls(
            store=store, bus=bus, max_body_bytes=max_body_bytes, fork_participants=fork_participants
        )
        await runtime._start()
        return runtime

    async def _start(self) -> None:
        await self.bus.start()
        await self.bus.ensure_topic(topics.EVENTS, partitions=4)
        await self.catalog.start()
        self.webhooks = await install_webhooks(
            self.app, store=self.store, bus=self.bus, scope_dependency=self._scope
        )
        await self.bus.ensure_topic(topics.COMMANDS, partitions=4)
        await consume_envelopes(self.bus, topics.EVENTS, group="catalog", handler=self._on_event)
        await consume_envelopes(
            self.bus, topics.COMMANDS, group="catalog-commands", handler=self.commands.handle
        )
        self._tasks.append(asyncio.create_task(OutboxRelay(self.store, self.bus).run(self._stop)))

    async def _on_event(self, envelope: Envelope) -> None:
        if envelope.type.startswith("task."):
            await self.catalog.apply_task_event(envelope)
        elif envelope.type == NamespaceForkAcknowledged.type_name:
            await self.catalog.acknowledge_fork(
                NamespaceForkAcknowledged.model_validate(envelope.data)
            )

    async def close(self) -> None:
        if self.webhooks is not None:
            await self.webhooks.stop()
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.stop()
        await self.store.close()
