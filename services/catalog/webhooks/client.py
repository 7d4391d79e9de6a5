"""The SDK's ``client.webhooks`` group: the HTTP routes as methods.

It takes the SDK's ``Client`` (duck-typed: anything with ``request(method, path, **kwargs)``), so
this module need not import ``offshoot.client`` — which imports it, to attach the group.
The client must send ``X-Namespace`` (``Client(..., namespace=...)`` or ``with_namespace``).
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

__all__ = ["Webhooks"]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class Webhooks:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def create(
        self,
        url: str,
        event_types: builtins.list[str],
        *,
        secret: str | None = None,
        description: str = "",
    ) -> Any:
        """Subscribe ``url``; the result's ``secret`` is shown only here — keep it."""
        body: dict[str, Any] = {"url": url, "event_types": event_types, "description": description}
        if secret is not None:
            body["secret"] = secret
        return self._client.request("POST", "/v1/webhooks", json=body)

    def list(self) -> builtins.list[Any]:
        return self._results(self._client.request("GET", "/v1/webhooks"))

    def get(self, webhook_id: str) -> Any:
        return self._client.request("GET", f"/v1/webhooks/{webhook_id}")

    def delete(self, webhook_id: str) -> None:
        self._client.request("DELETE", f"/v1/webhooks/{webhook_id}")

    def deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int = 100
    ) -> builtins.list[Any]:
        """The delivery log, newest first (``status``: PENDING, DELIVERED or DEAD)."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        page = self._client.request("GET", f"/v1/webhooks/{webhook_id}/deliveries", params=params)
        return self._results(page)

    def replay(self, delivery_id: str) -> Any:
        """Send a delivery again, its attempts reset; returns the re-queued delivery."""
        return self._client.request("POST", f"/v1/webhooks/deliveries/{delivery_id}/replay")

    @staticmethod
    def _results(page: Any) -> builtins.list[Any]:
        """Items in the client's own record type (``Record`` for the SDK's ``Client``)."""
        kind = type(page)
        return [kind(item) for item in page["results"]]
