"""The SDK's ``client.taxonomies`` and ``client.clusters`` groups: the HTTP routes as methods.

They take the SDK's ``Client`` (duck-typed: anything with ``request(method, path, **kwargs)``),
so this module need not import ``offshoot.client``, which imports it to attach the groups. The
client must send ``X-Namespace``.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

__all__ = ["Clusters", "Taxonomies"]


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class Taxonomies:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def create(self, body: dict[str, Any]) -> Any:
        return self._client.request("POST", "/v1/taxonomies", json=body)

    def get(self, taxonomy_identifier: str) -> Any:
        return self._client.request("GET", f"/v1/taxonomies/{taxonomy_identifier}")

    def list(self) -> builtins.list[Any]:
        return list(self._client.request("GET", "/v1/taxonomies")["results"])

    def update(self, taxonomy_identifier: str, **changes: Any) -> Any:
        return self._client.request("PATCH", f"/v1/taxonomies/{taxonomy_identifier}", json=changes)

    def delete(self, taxonomy_identifier: str) -> None:
        self._client.request("DELETE", f"/v1/taxonomies/{taxonomy_identifier}")

    def clone(self, taxonomy_identifier: str, body: dict[str, Any]) -> Any:
        """A new taxonomy from this one with overrides (``taxonomy_name`` required)."""
        return self._client.request(
            "POST", f"/v1/taxonomies/{taxonomy_identifier}/clone", json=body
        )

    def versions(self, taxonomy_identifier: str) -> Any:
        return self._client.request("GET", f"/v1/taxonomies/{taxonomy_identifier}/versions")

    def apply(
        self,
        taxonomy_identifier: str,
        collection_id: str,
        filters: dict[str, Any] | None = None,
        merge: str = "replace",
    ) -> Any:
        """Start labelling the collection; returns the task (``client.tasks.wait``)."""
        body = {"collection_id": collection_id, "filters": filters, "merge": merge}
        return self._client.request(
            "POST", f"/v1/taxonomies/{taxonomy_identifier}/apply", json=body
        )

    def compare(
        self,
        baseline: str,
        candidate: str,
        collection_id: str,
        *,
        sample: int = 100,
        ground_truth: str | dict[str, str] | None = None,
    ) -> Any:
        body = {"baseline": baseline, "candidate": candidate, "collection_id": collection_id,
                "sample": sample, "ground_truth": ground_truth}  # fmt: skip
        return self._client.request("POST", "/v1/taxonomies/compare", json=body)


class Clusters:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def create(
        self,
        collection_id: str,
        feature_uri: str,
        algorithm: str = "kmeans",
        params: dict[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """``options``: ``cluster_name``, ``write_back``, ``output_field``, ``label_field``."""
        body = {"collection_id": collection_id, "feature_uri": feature_uri,
                "algorithm": algorithm, "params": params or {}, **options}  # fmt: skip
        return self._client.request("POST", "/v1/clusters", json=body)

    def execute(self, cluster_identifier: str) -> Any:
        """Start the clustering; returns the task."""
        return self._client.request("POST", f"/v1/clusters/{cluster_identifier}/execute")

    def get(self, cluster_identifier: str) -> Any:
        return self._client.request("GET", f"/v1/clusters/{cluster_identifier}")

    def list(self) -> builtins.list[Any]:
        return list(self._client.request("GET", "/v1/clusters")["results"])

    def delete(self, cluster_identifier: str) -> None:
        self._client.request("DELETE", f"/v1/clusters/{cluster_identifier}")
