"""How the runtime mounts webhooks: one call that adds the routes and starts the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from services.catalog.webhooks.routes import ScopeLike, webhook_router
from services.catalog.webhooks.service import WebhookService

__all__ = ["install"]


async def install(
    runtime_app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    scope_dependency: Callable[..., Awaitable[ScopeLike]],
    **options: Any,
) -> WebhookService:
    """Mount ``/v1/webhooks`` on ``runtime_app`` and start the service on the catalog's
    ``store`` and ``bus`` (call it after the bus is started and ``offshoot.events`` exists).
    ``options`` go to ``WebhookService`` (retry ``policy``, ``poll_interval``, ...). The caller
    stops the returned service before stopping the bus."""
    service = WebhookService(store, bus, **options)
    runtime_app.include_router(webhook_router(service, scope_dependency))
    await service.start()
    return service
