"""The evaluation service: datasets, evaluations, interactions, benchmarks, collection diffs.

``install`` is what the runtime calls: it mounts the routes and starts the service (consumer
group ``evaluation`` on ``offshoot.events``, the outbox relay of its own store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from libs.bus import Bus
from libs.eventstore import EventStore
from services.evaluation.routes import evaluation_router
from services.evaluation.service import (
    CollectionDirectory,
    EvaluationService,
    Retrieval,
    StartTask,
)

__all__ = ["EvaluationService", "evaluation_router", "install"]


async def install(
    app: FastAPI,
    *,
    store: EventStore,
    bus: Bus,
    retrieval: Retrieval,
    directory: CollectionDirectory,
    start_task: StartTask,
    scope_dependency: Callable[..., Awaitable[Any]] | None = None,
) -> EvaluationService:
    """Start the service on its own ``store`` (after the bus is started and ``offshoot.events``
    exists) and, given ``scope_dependency``, mount its routes. The caller stops it."""
    service = EvaluationService(
        store, bus, retrieval=retrieval, directory=directory, start_task=start_task
    )
    if scope_dependency is not None:
        app.include_router(evaluation_router(service, scope_dependency))
    await service.start()
    return service
