"""Webhooks of the catalog: namespace subscriptions, signed deliveries with durable retries.

``install`` is what the runtime calls: it adds the routes to the app and starts the service.
Receivers check requests with ``verify_signature``; the SDK attaches the ``Webhooks`` group.

Names are imported on first use (PEP 562), so the SDK, which needs only ``Webhooks``, does not
pay for FastAPI, the bus and the database drivers at import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.catalog.webhooks.client import Webhooks
    from services.catalog.webhooks.dispatcher import matches
    from services.catalog.webhooks.routes import webhook_router
    from services.catalog.webhooks.service import DeliveryStatus, WebhookService
    from services.catalog.webhooks.signing import sign, signature_headers, verify_signature
    from services.catalog.webhooks.wiring import install
    from services.catalog.webhooks.worker import RetryPolicy

_WHERE = {
    "DeliveryStatus": "service",
    "RetryPolicy": "worker",
    "WebhookService": "service",
    "Webhooks": "client",
    "install": "wiring",
    "matches": "dispatcher",
    "sign": "signing",
    "signature_headers": "signing",
    "verify_signature": "signing",
    "webhook_router": "routes",
}

__all__ = [
    "DeliveryStatus",
    "RetryPolicy",
    "WebhookService",
    "Webhooks",
    "install",
    "matches",
    "sign",
    "signature_headers",
    "verify_signature",
    "webhook_router",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
