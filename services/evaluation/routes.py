"""HTTP routes of the evaluation service: ``/v1/evaluations`` (datasets and evaluations),
``/v1/benchmarks``, ``/v1/interactions`` and ``/v1/collections/{a}/diff/{b}``.

Evaluations live under ``/v1/evaluations`` rather than ``/v1/retrievers/evaluations``: the
retrieval service's ``/v1/retrievers/{retriever_id}`` would capture that path. The SDK still
reads ``client.retrievers.evaluations``.
"""

# No `from __future__ import annotations`: FastAPI must see the local `InScope` alias.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.auth import Permission
from contracts.evaluation import CreateBenchmark, CreateDataset, RecordInteractions, RunEvaluation
from libs.auth import Principal
from services.evaluation.service import EvaluationService


class ScopeLike(Protocol):
    @property
    def principal(self) -> Principal: ...

    @property
    def namespace_id(self) -> str: ...


class SimulateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(min_length=1, description="a dataset id or name")
    session_count: int = Field(default=100, ge=1, le=100_000)
    seed: int = 0


def evaluation_router(
    service: EvaluationService, scope_dependency: Callable[..., Awaitable[ScopeLike]]
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    InScope = Annotated[ScopeLike, Depends(scope_dependency)]

    # ---- datasets (before /evaluations/{evaluation_id}) --------------------------------------

    @api.post("/evaluations/datasets", status_code=201, tags=["evaluations"])
    async def create_dataset(body: CreateDataset, scope: InScope) -> dict[str, Any]:
        """Queries with graded judgements; ids are matched on ``document_id_field``."""
        scope.principal.require(Permission.WRITE)
        return await service.create_dataset(scope.namespace_id, body, key_id=scope.principal.key_id)

    @api.get("/evaluations/datasets", tags=["evaluations"])
    async def list_datasets(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_datasets(scope.namespace_id)}

    @api.get("/evaluations/datasets/{dataset_id}", tags=["evaluations"])
    async def get_dataset(dataset_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.dataset(scope.namespace_id, dataset_id)

    @api.delete("/evaluations/datasets/{dataset_id}", status_code=204, tags=["evaluations"])
    async def delete_dataset(dataset_id: str, scope: InScope) -> Response:
        scope.principal.require(Permission.WRITE)
        await service.delete_dataset(scope.namespace_id, dataset_id)
        return Response(status_code=204)

    # ---- evaluations -------------------------------------------------------------------------

    @api.post("/evaluations", status_code=202, tags=["evaluations"])
    async def run_evaluation(body: RunEvaluation, scope: InScope) -> dict[str, Any]:
        """Start scoring a retriever (or alias) on a dataset; returns the evaluation and its
        task (``GET /v1/tasks/{task_id}``)."""
        scope.principal.require(Permission.WRITE)
        return await service.run_evaluation(
            scope.namespace_id, body, organization_id=scope.principal.organization_id,
            key_id=scope.principal.key_id,
        )  # fmt: skip

    @api.get("/evaluations", tags=["evaluations"])
    async def list_evaluations(scope: InScope) -> dict[str, Any]:
        """Newest first, without per-query rows."""
        scope.principal.require(Permission.READ)
        return {"results": await service.list_evaluations(scope.namespace_id)}

    @api.get("/evaluations/{evaluation_id}", tags=["evaluations"])
    async def get_evaluation(evaluation_id: str, scope: InScope) -> dict[str, Any]:
        """``overall_metrics``, ``metrics_by_k``, ``per_query``, ``latency_ms``,
        ``missing_documents`` once ``status`` is COMPLETED."""
        scope.principal.require(Permission.READ)
        return await service.evaluation(scope.namespace_id, evaluation_id)

    # ---- interactions ------------------------------------------------------------------------

    @api.post("/interactions", status_code=201, tags=["interactions"])
    async def record_interactions(body: RecordInteractions, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.record_interactions(scope.namespace_id, body)

    @api.get("/interactions", tags=["interactions"])
    async def list_interactions(
        scope: InScope,
        session_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """Newest first."""
        scope.principal.require(Permission.READ)
        return {"results": await service.list_interactions(
            scope.namespace_id, session_id=session_id, limit=limit
        )}  # fmt: skip

    @api.post("/interactions/simulate", status_code=201, tags=["interactions"])
    async def simulate_interactions(body: SimulateBody, scope: InScope) -> dict[str, Any]:
        """Record sessions a user with the dataset's judgements would leave (clicks on the
        relevant documents), seeded: benchmarks can replay them."""
        scope.principal.require(Permission.WRITE)
        return await service.simulate_sessions(
            scope.namespace_id, body.dataset_id, body.session_count, body.seed
        )

    # ---- benchmarks --------------------------------------------------------------------------

    @api.post("/benchmarks", status_code=201, tags=["benchmarks"])
    async def create_benchmark(body: CreateBenchmark, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.create_benchmark(
            scope.namespace_id, body, key_id=scope.principal.key_id
        )

    @api.get("/benchmarks", tags=["benchmarks"])
    async def list_benchmarks(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_benchmarks(scope.namespace_id)}

    @api.get("/benchmarks/{benchmark_id}", tags=["benchmarks"])
    async def get_benchmark(benchmark_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.benchmark(scope.namespace_id, benchmark_id)

    @api.post("/benchmarks/{benchmark_id}/execute", status_code=202, tags=["benchmarks"])
    async def execute_benchmark(benchmark_id: str, scope: InScope) -> dict[str, Any]:
        """Replay the latest sessions against every retriever; returns the task."""
        scope.principal.require(Permission.WRITE)
        return await service.execute_benchmark(
            scope.namespace_id, benchmark_id, organization_id=scope.principal.organization_id
        )

    # ---- change detection --------------------------------------------------------------------

    @api.get("/collections/{collection_a}/diff/{collection_b}", tags=["collections"])
    async def diff_collections(
        collection_a: str, collection_b: str, scope: InScope
    ) -> dict[str, Any]:
        """NONE | CONFIG_CHANGE | MODEL_UPDATE | DIMENSION_CHANGE, what differs, and what must
        be re-embedded to go from ``a`` to ``b``."""
        scope.principal.require(Permission.READ)
        return await service.diff_collections(scope.namespace_id, collection_a, collection_b)

    return api
