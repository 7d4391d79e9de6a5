"""HTTP routes of the extractor: feature extractors, documents, lineage and batches (``/v1``).

Namespace-scoped routes take the caller's scope from ``scope_dependency`` (the runtime passes
the catalog's): services never import each other, so the dependency is a parameter.
"""

# No `from __future__ import annotations`: FastAPI must see the local `InScope` alias.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query

from contracts.auth import Permission
from libs.auth import Principal
from libs.extractors import list_extractors
from services.extractor.service import ExtractorService


class ScopeLike(Protocol):
    """What the catalog's ``scope_dependency`` yields: the caller and its namespace."""

    @property
    def principal(self) -> Principal: ...

    @property
    def namespace_id(self) -> str: ...


def extractor_catalogue() -> list[dict[str, Any]]:
    """Every registered extractor as ``GET /v1/feature-extractors`` shows it (loads no model)."""
    results = []
    for info in list_extractors():
        results.append(
            {
                "name": info.name,
                "version": info.version,
                "modality": info.modality,
                "description": info.description,
                "feature_uri": info.feature_uri,
                "outputs": [output.model_dump() for output in info.outputs],
                "parameters": info.parameters,
                "parameters_schema": info.parameters_schema,
                "config_hash": info.config_hash,
            }
        )
    return results


def extractor_router(
    service: ExtractorService,
    scope_dependency: Callable[..., Awaitable[ScopeLike]],
    principal_dependency: Callable[..., Awaitable[Principal]] | None = None,
) -> APIRouter:
    """The routes. ``principal_dependency`` (optional) authenticates the namespace-free listing."""
    api = APIRouter(prefix="/v1")
    InScope = Annotated[ScopeLike, Depends(scope_dependency)]
    listing_deps = [Depends(principal_dependency)] if principal_dependency is not None else []

    @api.get("/feature-extractors", tags=["feature-extractors"], dependencies=listing_deps)
    async def list_feature_extractors() -> dict[str, Any]:
        return {"results": extractor_catalogue()}

    @api.get("/collections/{collection_id}/documents", tags=["documents"])
    async def list_documents(
        collection_id: str,
        scope: InScope,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.documents(
            scope.namespace_id, collection_id, limit=limit, offset=offset
        )

    @api.get("/documents/{document_id}", tags=["documents"])
    async def get_document(document_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.document(scope.namespace_id, document_id)

    @api.get("/documents/{document_id}/lineage", tags=["documents"])
    async def get_lineage(document_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.lineage(scope.namespace_id, document_id)

    @api.post("/collections/{collection_id}/materialise", tags=["collections"], status_code=202)
    async def materialise_collection(collection_id: str, scope: InScope) -> dict[str, Any]:
        """Copy a cloned collection's inherited documents into storage of its own (``mode=copy``)
        as a background task; it reads the same throughout. The reply names the task."""
        scope.principal.require(Permission.WRITE)
        return await service.materialise(
            scope.namespace_id, collection_id, organization_id=scope.principal.organization_id
        )

    @api.get("/batches/{batch_id}", tags=["batches"])
    async def get_batch(batch_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.batch(scope.namespace_id, batch_id)

    @api.post("/batches/{batch_id}/retry", tags=["batches"])
    async def retry_batch(batch_id: str, scope: InScope) -> dict[str, Any]:
        """Process the batch's failed inputs again; the reply is the batch afterwards."""
        scope.principal.require(Permission.WRITE)
        return await service.retry(scope.namespace_id, batch_id)

    return api
