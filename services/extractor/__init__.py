"""The extractor service: documents and their vectors, built from catalog events.

``install`` is what the runtime calls: it mounts the routes and starts the service (consumer
group ``extractor`` on ``offshoot.events``, the outbox relay of its own store). See
docs/decisions/0007-extractor-service.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from libs.extractors import InferenceCache
from libs.sources import SourceReader
from libs.vectors import VectorStore
from services.extractor.routes import extractor_router
from services.extractor.service import ExtractorService

__all__ = ["ExtractorService", "extractor_router", "install"]


async def install(
    app: FastAPI,
    *,
    store: EventStore,
    vectors: VectorStore,
    bus: Bus,
    sources: SourceReader,
    cache: InferenceCache,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    principal_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> ExtractorService:
    """Start the service on its own ``store`` (call after the bus is started and
    ``offshoot.events`` exists) and, given ``scope_dependency``, mount its routes on ``app``.
    The caller stops the returned service (``await service.stop()``) before the bus."""
    service = ExtractorService(store, vectors, bus, sources, cache, **options)
    if scope_dependency is not None:
        app.include_router(extractor_router(service, scope_dependency, principal_dependency))
    await service.start()
    return service
