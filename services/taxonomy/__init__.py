"""The taxonomy service: taxonomies (flat, hierarchical), apply, compare, and clusters.

``install`` is what the runtime calls: it mounts the routes, starts the service (consumer group
``taxonomy`` on ``offshoot.events``, the outbox relay of its own store) and plugs it into the
retrieval engine's ``taxonomy_enrich`` stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from libs.vectors import VectorStore
from services.retrieval.engine.stages import taxonomy_enrich
from services.taxonomy.routes import taxonomy_router
from services.taxonomy.service import DocumentOwner, Retrieval, StartTask, TaxonomyService

__all__ = ["TaxonomyService", "install", "taxonomy_router"]


async def install(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    retrieval: Retrieval,
    documents: DocumentOwner,
    vectors: VectorStore,
    start_task: StartTask,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
    **options: Any,
) -> TaxonomyService:
    """Start the service on its own ``store`` (after the bus is started and ``offshoot.events``
    exists) and, given ``scope_dependency``, mount its routes. The caller stops it."""
    service = TaxonomyService(
        store, bus, retrieval=retrieval, documents=documents, vectors=vectors,
        start_task=start_task, **options,
    )  # fmt: skip
    if scope_dependency is not None:
        app.include_router(taxonomy_router(service, scope_dependency))
    taxonomy_enrich.install(service.enrich_payloads)
    await service.start()
    return service
