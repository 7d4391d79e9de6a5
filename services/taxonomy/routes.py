"""HTTP routes of the taxonomy service: ``/v1/taxonomies`` and ``/v1/clusters``.

Namespace-scoped routes take the caller's scope from ``scope_dependency`` (the runtime passes
the catalog's): services never import each other, so the dependency is a parameter.
"""

# No `from __future__ import annotations`: FastAPI must see the local `InScope` alias.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Response

from contracts.auth import Permission
from contracts.taxonomy import (
    ApplyTaxonomy,
    CloneTaxonomy,
    CompareTaxonomies,
    CreateCluster,
    CreateTaxonomy,
    UpdateTaxonomy,
)
from libs.auth import Principal
from services.taxonomy.service import TaxonomyService


class ScopeLike(Protocol):
    """What the catalog's ``scope_dependency`` yields: the caller and its namespace."""

    @property
    def principal(self) -> Principal: ...

    @property
    def namespace_id(self) -> str: ...


def taxonomy_router(
    service: TaxonomyService, scope_dependency: Callable[..., Awaitable[ScopeLike]]
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    InScope = Annotated[ScopeLike, Depends(scope_dependency)]

    # ---- taxonomies --------------------------------------------------------------------------

    @api.post("/taxonomies", status_code=201, tags=["taxonomies"])
    async def create_taxonomy(body: CreateTaxonomy, scope: InScope) -> dict[str, Any]:
        """422 for a retriever that does not exist, an input mapping the retriever does not
        take, or a hierarchy that is not a tree; nothing is stored then."""
        scope.principal.require(Permission.WRITE)
        return await service.create_taxonomy(
            scope.namespace_id, body, key_id=scope.principal.key_id
        )

    @api.get("/taxonomies", tags=["taxonomies"])
    async def list_taxonomies(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_taxonomies(scope.namespace_id)}

    @api.post("/taxonomies/compare", tags=["taxonomies"])
    async def compare_taxonomies(body: CompareTaxonomies, scope: InScope) -> dict[str, Any]:
        """Both taxonomies label the same sample (nothing is written): agreement, confusion
        table, per-label counts and, with ground truth, accuracy and macro-F1 with deltas."""
        scope.principal.require(Permission.READ)
        return await service.compare(scope.namespace_id, body)

    @api.get("/taxonomies/{taxonomy_id}", tags=["taxonomies"])
    async def get_taxonomy(taxonomy_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.taxonomy(scope.namespace_id, taxonomy_id)

    @api.patch("/taxonomies/{taxonomy_id}", tags=["taxonomies"])
    async def patch_taxonomy(
        taxonomy_id: str, body: UpdateTaxonomy, scope: InScope
    ) -> dict[str, Any]:
        """Name and description only; the core config is 409 (clone instead)."""
        scope.principal.require(Permission.WRITE)
        return await service.update_taxonomy(scope.namespace_id, taxonomy_id, body)

    @api.delete("/taxonomies/{taxonomy_id}", status_code=204, tags=["taxonomies"])
    async def delete_taxonomy(taxonomy_id: str, scope: InScope) -> Response:
        scope.principal.require(Permission.WRITE)
        await service.delete_taxonomy(scope.namespace_id, taxonomy_id)
        return Response(status_code=204)

    @api.post("/taxonomies/{taxonomy_id}/clone", status_code=201, tags=["taxonomies"])
    async def clone_taxonomy(
        taxonomy_id: str, body: CloneTaxonomy, scope: InScope
    ) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.clone_taxonomy(
            scope.namespace_id, taxonomy_id, body, key_id=scope.principal.key_id
        )

    @api.get("/taxonomies/{taxonomy_id}/versions", tags=["taxonomies"])
    async def taxonomy_versions(taxonomy_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.versions(scope.namespace_id, taxonomy_id)

    @api.post("/taxonomies/{taxonomy_id}/apply", status_code=202, tags=["taxonomies"])
    async def apply_taxonomy(
        taxonomy_id: str, body: ApplyTaxonomy, scope: InScope
    ) -> dict[str, Any]:
        """Start labelling the collection's documents; returns the task to poll."""
        scope.principal.require(Permission.WRITE)
        return await service.apply(
            scope.namespace_id, taxonomy_id, body,
            organization_id=scope.principal.organization_id,
        )  # fmt: skip

    # ---- clusters ----------------------------------------------------------------------------

    @api.post("/clusters", status_code=201, tags=["clusters"])
    async def create_cluster(body: CreateCluster, scope: InScope) -> dict[str, Any]:
        """422 when the collection lacks ``feature_uri`` or the parameters are wrong."""
        scope.principal.require(Permission.WRITE)
        return await service.create_cluster(scope.namespace_id, body, key_id=scope.principal.key_id)

    @api.get("/clusters", tags=["clusters"])
    async def list_clusters(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_clusters(scope.namespace_id)}

    @api.get("/clusters/{cluster_id}", tags=["clusters"])
    async def get_cluster(cluster_id: str, scope: InScope) -> dict[str, Any]:
        """The definition and its last execution (clusters, assignments, metrics)."""
        scope.principal.require(Permission.READ)
        return await service.cluster(scope.namespace_id, cluster_id)

    @api.delete("/clusters/{cluster_id}", status_code=204, tags=["clusters"])
    async def delete_cluster(cluster_id: str, scope: InScope) -> Response:
        scope.principal.require(Permission.WRITE)
        await service.delete_cluster(scope.namespace_id, cluster_id)
        return Response(status_code=204)

    @api.post("/clusters/{cluster_id}/execute", status_code=202, tags=["clusters"])
    async def execute_cluster(cluster_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.execute_cluster(
            scope.namespace_id, cluster_id, organization_id=scope.principal.organization_id
        )

    return api
