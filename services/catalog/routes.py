"""HTTP routes of the catalog: ``/v1/namespaces``, ``/v1/tasks``, ``/v1/keys``."""

# No `from __future__ import annotations`: FastAPI must see the local `Caller` alias at def time.

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.auth import CreateApiKey, Permission
from contracts.namespaces import (
    NAME_PATTERN,
    CloneNamespace,
    CreateNamespace,
    DeleteNamespace,
    IncludeResources,
    UpdateNamespace,
)
from libs.auth import Principal
from libs.errors import InvalidInputError
from services.catalog.service import CatalogService


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamespacePatch(_Body):
    namespace_name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)


class CloneBody(_Body):
    namespace_name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    include_resources: IncludeResources = Field(default_factory=IncludeResources)


class KeyBody(_Body):
    name: str = Field(min_length=1, max_length=200)
    permissions: list[Permission] = Field(min_length=1)
    namespace_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is calling and in which namespace (``X-Namespace``: an id or a name)."""

    principal: Principal
    namespace: dict[str, Any]

    @property
    def namespace_id(self) -> str:
        return str(self.namespace["namespace_id"])


def scope_dependency(
    service: CatalogService, principal: Callable[..., Awaitable[Principal]]
) -> Callable[..., Awaitable[Scope]]:
    """A FastAPI dependency for namespace-scoped routes; 404 for a namespace the key may not see."""

    async def scope(
        caller: Annotated[Principal, Depends(principal)],
        x_namespace: Annotated[str | None, Header()] = None,
    ) -> Scope:
        if not x_namespace:
            raise InvalidInputError("missing X-Namespace header (a namespace id or name)")
        return Scope(caller, await service.namespace(caller, x_namespace))

    return scope


def router(service: CatalogService, principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    api = APIRouter(prefix="/v1")
    Caller = Annotated[Principal, Depends(principal)]

    @api.post("/namespaces", status_code=201, tags=["namespaces"])
    async def create_namespace(body: CreateNamespace, caller: Caller) -> dict[str, Any]:
        return await service.create_namespace(caller, body)

    @api.get("/namespaces", tags=["namespaces"])
    async def list_namespaces(caller: Caller) -> dict[str, Any]:
        return {"results": await service.list_namespaces(caller)}

    @api.get("/namespaces/{namespace_identifier}", tags=["namespaces"])
    async def get_namespace(
        namespace_identifier: str, caller: Caller, as_of: Annotated[int | None, Query(ge=0)] = None
    ) -> dict[str, Any]:
        return await service.namespace(caller, namespace_identifier, as_of=as_of)

    @api.patch("/namespaces/{namespace_identifier}", tags=["namespaces"])
    async def patch_namespace(
        namespace_identifier: str, body: NamespacePatch, caller: Caller
    ) -> dict[str, Any]:
        command = UpdateNamespace(namespace_id=namespace_identifier, **body.model_dump())
        return await service.update_namespace(caller, command)

    @api.delete("/namespaces/{namespace_identifier}", status_code=204, tags=["namespaces"])
    async def delete_namespace(namespace_identifier: str, caller: Caller) -> Response:
        await service.delete_namespace(caller, DeleteNamespace(namespace_id=namespace_identifier))
        return Response(status_code=204)

    @api.post("/namespaces/{namespace_identifier}/clone", status_code=202, tags=["namespaces"])
    async def clone_namespace(
        namespace_identifier: str, body: CloneBody, caller: Caller
    ) -> dict[str, Any]:
        command = CloneNamespace(namespace_id=namespace_identifier, **body.model_dump())
        return await service.clone_namespace(caller, command)

    @api.get("/tasks/{task_id}", tags=["tasks"])
    async def get_task(task_id: str, caller: Caller) -> dict[str, Any]:
        return await service.task(caller, task_id)

    @api.post("/tasks/{task_id}/cancel", tags=["tasks"])
    async def cancel_task(task_id: str, caller: Caller) -> dict[str, Any]:
        return await service.cancel_task(caller, task_id)

    @api.get("/tasks", tags=["tasks"])
    async def list_tasks(
        caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        return {"results": await service.list_tasks(caller, limit=limit)}

    @api.post("/keys", status_code=201, tags=["keys"])
    async def create_key(body: KeyBody, caller: Caller) -> dict[str, Any]:
        key = await service.create_key(caller, CreateApiKey(**body.model_dump()))
        return {"key_id": key.key_id, "api_key": key.api_key}

    @api.delete("/keys/{key_id}", status_code=204, tags=["keys"])
    async def revoke_key(key_id: str, caller: Caller) -> Response:
        await service.revoke_key(caller, key_id)
        return Response(status_code=204)

    return api
