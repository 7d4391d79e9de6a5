"""HTTP routes of the retrieval service: ``/v1/retrievers`` and ``/v1/aliases``.

Namespace-scoped routes take the caller's scope from ``scope_dependency`` (the runtime passes
the catalog's): services never import each other, so the dependency is a parameter.
"""

# No `from __future__ import annotations`: FastAPI must see the local `InScope` alias.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, Protocol, TypeVar

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from contracts.auth import Permission
from contracts.base import Command
from contracts.retrieval import (
    ClearVariant,
    CloneRetriever,
    CreateAlias,
    CreateRetriever,
    MoveAlias,
    RollbackAlias,
    SetCanary,
    SetShadow,
    UpdateRetriever,
)
from libs.auth import Principal
from libs.errors import InvalidInputError
from services.retrieval.service import RetrievalService


class ScopeLike(Protocol):
    """What the catalog's ``scope_dependency`` yields: the caller and its namespace."""

    @property
    def principal(self) -> Principal: ...

    @property
    def namespace_id(self) -> str: ...


class ExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=1, le=10_000, description="cut the results")


C = TypeVar("C", bound=Command)


def addressed(command: C, **url: str) -> C:
    """The command with its target from the URL (the bus carries it in the body); a body that
    names another target is a 422."""
    for field, value in url.items():
        given = getattr(command, field)
        if given is not None and given != value:
            raise InvalidInputError(f"{field}: the URL names {value!r}, the body {given!r}")
    return command.model_copy(update=url)


class AliasExecuteBody(ExecuteBody):
    user_id: str | None = Field(
        default=None, max_length=500, description="assigns the canary variant (stable per user)"
    )
    session_id: str | None = Field(
        default=None, max_length=500, description="assigns the variant when user_id is absent"
    )


def retrieval_router(
    service: RetrievalService,
    scope_dependency: Callable[..., Awaitable[ScopeLike]],
    principal_dependency: Callable[..., Awaitable[Principal]] | None = None,
) -> APIRouter:
    api = APIRouter(prefix="/v1")
    InScope = Annotated[ScopeLike, Depends(scope_dependency)]
    listing_deps = [Depends(principal_dependency)] if principal_dependency is not None else []

    # ---- retrievers --------------------------------------------------------------------------

    @api.get("/retrievers/stages", tags=["retrievers"], dependencies=listing_deps)
    async def list_stages() -> dict[str, Any]:
        """Every stage a retriever may use, with its parameters' JSON Schema."""
        return {"results": service.stages()}

    @api.post("/retrievers", status_code=201, tags=["retrievers"])
    async def create_retriever(body: CreateRetriever, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.create_retriever(
            scope.namespace_id, body, key_id=scope.principal.key_id
        )

    @api.get("/retrievers", tags=["retrievers"])
    async def list_retrievers(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_retrievers(scope.namespace_id)}

    @api.get("/retrievers/{retriever_id}", tags=["retrievers"])
    async def get_retriever(retriever_id: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.retriever(scope.namespace_id, retriever_id)

    @api.patch("/retrievers/{retriever_id}", tags=["retrievers"])
    async def patch_retriever(
        retriever_id: str, body: UpdateRetriever, scope: InScope
    ) -> dict[str, Any]:
        """Name, description and tags only; stages and collections are 409 (clone instead)."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body, retriever_id=retriever_id)
        return await service.update_retriever(scope.namespace_id, retriever_id, command)

    @api.delete("/retrievers/{retriever_id}", status_code=204, tags=["retrievers"])
    async def delete_retriever(retriever_id: str, scope: InScope) -> Response:
        """Refused (409) while an alias serves the retriever."""
        scope.principal.require(Permission.WRITE)
        await service.delete_retriever(scope.namespace_id, retriever_id)
        return Response(status_code=204)

    @api.post("/retrievers/{retriever_id}/clone", status_code=201, tags=["retrievers"])
    async def clone_retriever(
        retriever_id: str, body: CloneRetriever, scope: InScope
    ) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        command = addressed(body, retriever_id=retriever_id)
        return await service.clone_retriever(
            scope.namespace_id, retriever_id, command, key_id=scope.principal.key_id
        )

    @api.post("/retrievers/{retriever_id}/execute", tags=["retrievers"])
    async def execute_retriever(
        retriever_id: str, body: ExecuteBody, scope: InScope
    ) -> dict[str, Any]:
        """Ranked documents with scores, payload and lineage; per-stage reports, the feature
        URIs used and what came from caches."""
        scope.principal.require(Permission.READ)
        return await service.execute(
            scope.namespace_id, retriever_id, body.inputs, limit=body.limit
        )

    @api.post("/retrievers/{retriever_id}/explain", tags=["retrievers"])
    async def explain_retriever(retriever_id: str, scope: InScope) -> dict[str, Any]:
        """The plan without running it: stages in execution order, resolved parameters."""
        scope.principal.require(Permission.READ)
        return await service.explain(scope.namespace_id, retriever_id)

    # ---- aliases -----------------------------------------------------------------------------

    @api.post("/aliases", status_code=201, tags=["aliases"])
    async def create_alias(body: CreateAlias, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.WRITE)
        return await service.create_alias(scope.namespace_id, body, key_id=scope.principal.key_id)

    @api.get("/aliases", tags=["aliases"])
    async def list_aliases(scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return {"results": await service.list_aliases(scope.namespace_id)}

    @api.get("/aliases/{alias_name}", tags=["aliases"])
    async def get_alias(alias_name: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.alias(scope.namespace_id, alias_name)

    @api.delete("/aliases/{alias_name}", status_code=204, tags=["aliases"])
    async def delete_alias(alias_name: str, scope: InScope) -> Response:
        scope.principal.require(Permission.WRITE)
        await service.delete_alias(scope.namespace_id, alias_name)
        return Response(status_code=204)

    @api.post("/aliases/{alias_name}/move", tags=["aliases"])
    async def move_alias(alias_name: str, body: MoveAlias, scope: InScope) -> dict[str, Any]:
        """Point the alias at another retriever (promotion); recorded with who, when and why."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body, alias_name=alias_name)
        return await service.move_alias(
            scope.namespace_id, alias_name, command, key_id=scope.principal.key_id
        )

    @api.post("/aliases/{alias_name}/rollback", tags=["aliases"])
    async def rollback_alias(
        alias_name: str, scope: InScope, body: RollbackAlias | None = None
    ) -> dict[str, Any]:
        """Point the alias back at the retriever it served before its last move."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body or RollbackAlias(), alias_name=alias_name)
        return await service.rollback_alias(
            scope.namespace_id, alias_name, command, key_id=scope.principal.key_id
        )

    @api.get("/aliases/{alias_name}/history", tags=["aliases"])
    async def alias_history(alias_name: str, scope: InScope) -> dict[str, Any]:
        scope.principal.require(Permission.READ)
        return await service.alias_history(scope.namespace_id, alias_name)

    @api.post("/aliases/{alias_name}/canary", tags=["aliases"])
    async def set_canary(alias_name: str, body: SetCanary, scope: InScope) -> dict[str, Any]:
        """Serve ``percent`` of callers (by ``user_id``/``session_id`` hash) from another
        retriever; replaces an existing canary."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body, alias_name=alias_name)
        return await service.set_canary(
            scope.namespace_id, alias_name, command, key_id=scope.principal.key_id
        )

    @api.post("/aliases/{alias_name}/shadow", tags=["aliases"])
    async def set_shadow(alias_name: str, body: SetShadow, scope: InScope) -> dict[str, Any]:
        """Also run another retriever on every request's inputs, after the response; the
        comparison is at ``GET /v1/aliases/{alias_name}/shadow``."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body, alias_name=alias_name)
        return await service.set_shadow(
            scope.namespace_id, alias_name, command, key_id=scope.principal.key_id
        )

    @api.get("/aliases/{alias_name}/shadow", tags=["aliases"])
    async def shadow_report(alias_name: str, scope: InScope) -> dict[str, Any]:
        """Overlap@k, mean absolute rank shift and latency delta of the alias's shadows."""
        scope.principal.require(Permission.READ)
        return await service.shadow_report(scope.namespace_id, alias_name)

    @api.delete("/aliases/{alias_name}/{variant}", tags=["aliases"])
    async def clear_variant(
        alias_name: str, variant: Literal["canary", "shadow"], scope: InScope,
        body: ClearVariant | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Stop the alias's canary or shadow (recorded in its history)."""
        scope.principal.require(Permission.WRITE)
        command = addressed(body or ClearVariant(), alias_name=alias_name, variant=variant)
        return await service.clear_variant(
            scope.namespace_id, alias_name, variant, command, key_id=scope.principal.key_id
        )

    @api.post("/aliases/{alias_name}/execute", tags=["aliases"])
    async def execute_alias(
        alias_name: str, body: AliasExecuteBody, scope: InScope
    ) -> dict[str, Any]:
        """Like executing a retriever; ``served_by`` names the retriever that answered and
        ``variant`` whether it was the primary or the canary."""
        scope.principal.require(Permission.READ)
        return await service.execute_alias(
            scope.namespace_id, alias_name, body.inputs, limit=body.limit,
            user_id=body.user_id, session_id=body.session_id,
        )  # fmt: skip

    return api
