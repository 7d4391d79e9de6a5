"""The retrieval service: retrievers and aliases over the engine (``engine/``).

``install`` is what the runtime calls: it mounts the routes and starts the service (consumer
group ``retrieval`` on ``offshoot.events``, the outbox relay of its own store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from libs.extractors import InferenceCache
from libs.vectors import VectorStore
from services.retrieval.routes import retrieval_router
from services.retrieval.service import CollectionDirectory, RetrievalService

__all__ = ["CollectionDirectory", "RetrievalService", "install", "retrieval_router"]


async def install(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    vectors: VectorStore,
    cache: InferenceCache,
    directory: CollectionDirectory,
    write_position: Callable[[], Awaitable[int]] | None = None,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    principal_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> RetrievalService:
    """Start the service on its own ``store`` (after the bus is started and ``offshoot.events``
    exists) and, given ``scope_dependency``, mount its routes. The caller stops it."""
    service = RetrievalService(
        store, bus, vectors=vectors, inference_cache=cache, directory=directory,
        write_position=write_position, **options,
    )  # fmt: skip
    if scope_dependency is not None:
        app.include_router(retrieval_router(service, scope_dependency, principal_dependency))
    await service.start()
    return service
