"""HTTP routes of webhooks, all namespace-scoped (``X-Namespace``): ``/v1/webhooks``.

Writes need the ``write`` permission, reads ``read``; a webhook or delivery of another namespace
or organization is a 404, as if it did not exist.
"""

# No `from __future__ import annotations`: FastAPI must see the local `InScope` alias at def time.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Response

from contracts.webhooks import CreateWebhook
from libs.auth import Principal
from services.catalog.webhooks.service import DeliveryStatus, WebhookService

__all__ = ["webhook_router"]


class ScopeLike(Protocol):
    """What the catalog's ``scope_dependency`` yields: the caller and its namespace."""

    @property
    def principal(self) -> Principal: ...

    @property
    def namespace_id(self) -> str: ...


def webhook_router(
    service: WebhookService, scope_dependency: Callable[..., Awaitable[ScopeLike]]
) -> APIRouter:
    """The routes; ``scope_dependency`` is the catalog's ``scope_dependency(catalog, principal)``."""
    api = APIRouter(prefix="/v1", tags=["webhooks"])
    InScope = Annotated[ScopeLike, Depends(scope_dependency)]

    @api.post("/webhooks", status_code=201)
    async def create_webhook(body: CreateWebhook, scope: InScope) -> dict[str, Any]:
        """Subscribe a URL; the reply carries the signing ``secret``, shown this once."""
        return await service.create(scope.principal, scope.namespace_id, body)

    @api.get("/webhooks")
    async def list_webhooks(scope: InScope) -> dict[str, Any]:
        return {"results": await service.list(scope.principal, scope.namespace_id)}

    @api.get("/webhooks/{webhook_id}")
    async def get_webhook(webhook_id: str, scope: InScope) -> dict[str, Any]:
        return await service.get(scope.principal, scope.namespace_id, webhook_id)

    @api.delete("/webhooks/{webhook_id}", status_code=204)
    async def delete_webhook(webhook_id: str, scope: InScope) -> Response:
        await service.delete(scope.principal, scope.namespace_id, webhook_id)
        return Response(status_code=204)

    @api.get("/webhooks/{webhook_id}/deliveries")
    async def list_deliveries(
        webhook_id: str,
        scope: InScope,
        status: Annotated[DeliveryStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The delivery log, newest first, with attempts, last error and next attempt time."""
        results = await service.deliveries(
            scope.principal, scope.namespace_id, webhook_id, status=status, limit=limit
        )
        return {"results": results}

    @api.post("/webhooks/deliveries/{delivery_id}/replay", status_code=202)
    async def replay_delivery(delivery_id: str, scope: InScope) -> dict[str, Any]:
        """Send the delivery again (attempts reset); the reply is the re-queued delivery."""
        return await service.replay(scope.principal, scope.namespace_id, delivery_id)

    return api
