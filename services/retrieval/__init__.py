"""The retrieval service: retrievers and aliases over the engine (``engine/``).

``install`` is what the runtime calls: it mounts the routes and starts the service (consumer
group ``retrieval`` on ``offshoot.events``, the outbox relay of its own store);
``serve_grpc`` adds the gRPC ``Execute`` server (``contracts/retrieval.proto``) to a started
service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from libs.extractors import InferenceCache
from libs.vectors import VectorStore
from services.retrieval.grpc_server import GrpcServer
from services.retrieval.routes import retrieval_router
from services.retrieval.service import CollectionDirectory, RetrievalService

__all__ = ["CollectionDirectory", "RetrievalService", "install", "retrieval_router", "serve_grpc"]


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


async def serve_grpc(
    service: RetrievalService,
    *,
    scope_dependency: Callable[..., Awaitable[Any]],
    principal_dependency: Callable[..., Awaitable[Any]],
    port: int,
    host: str = "127.0.0.1",
) -> int:
    """Serve ``service`` over gRPC on ``host:port`` (0: any free port) and return the port. The
    server authenticates through the HTTP routes' dependencies (``authorization`` and
    ``x-namespace`` metadata), so both interfaces admit the same callers; it stops with the
    service."""

    async def authorize(authorization: str | None, namespace: str | None) -> Any:
        return await scope_dependency(await principal_dependency(authorization), namespace)

    server = await GrpcServer.start(service, authorize, host=host, port=port)
    service.grpc_port = server.port
    service.close_with(server.stop)
    return server.port
