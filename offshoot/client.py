"""The Python SDK: ``Client(base_url, api_key)`` over HTTP, or ``Client.embedded(data_dir)``,
which runs every service in this process on the embedded default and talks to it over loopback
HTTP — the same methods, the same wire, either way.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from contracts.tasks import TaskStatus
from libs.auth import AuthenticationError, PermissionDeniedError
from libs.errors import ConflictError, InvalidInputError, NotFoundError, OffshootError
from services.catalog.webhooks.client import Webhooks
from services.evaluation.client import (
    Benchmarks,
    CollectionDiff,
    Datasets,
    Evaluations,
    Interactions,
)
from services.evaluation.client import attach as attach_evaluation
from services.taxonomy.client import Clusters, Taxonomies

_ERRORS: dict[int, type[OffshootError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidInputError,
    422: InvalidInputError,
}


class Record(dict[str, Any]):
    """A response object: a dict whose keys also read as attributes (``task.task_id``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return Record(value) if isinstance(value, dict) else value


class ApiError(OffshootError):
    """An HTTP error the API returned that has no more specific class."""


class _Group:
    def __init__(self, client: Client) -> None:
        self._client = client


class Namespaces(_Group):
    def create(self, namespace_name: str, description: str = "") -> Record:
        return self._client.request(
            "POST",
            "/v1/namespaces",
            json={"namespace_name": namespace_name, "description": description},
        )

    def get(self, namespace_identifier: str, *, as_of: int | None = None) -> Record:
        params = {} if as_of is None else {"as_of": as_of}
        return self._client.request("GET", f"/v1/namespaces/{namespace_identifier}", params=params)

    def list(self) -> list[Record]:
        return [Record(r) for r in self._client.request("GET", "/v1/namespaces")["results"]]

    def update(self, namespace_identifier: str, **changes: Any) -> Record:
        return self._client.request("PATCH", f"/v1/namespaces/{namespace_identifier}", json=changes)

    def delete(self, namespace_identifier: str) -> None:
        self._client.request("DELETE", f"/v1/namespaces/{namespace_identifier}")

    def clone(self, namespace_identifier: str, body: dict[str, Any]) -> Record:
        """Start a clone; returns its task (``client.tasks.wait(task.task_id)``)."""
        return self._client.request(
            "POST", f"/v1/namespaces/{namespace_identifier}/clone", json=body
        )


class Tasks(_Group):
    def get(self, task_id: str) -> Record:
        return self._client.request("GET", f"/v1/tasks/{task_id}")

    def list(self, limit: int = 100) -> list[Record]:
        return [
            Record(r)
            for r in self._client.request("GET", "/v1/tasks", params={"limit": limit})["results"]
        ]

    def cancel(self, task_id: str) -> Record:
        return self._client.request("POST", f"/v1/tasks/{task_id}/cancel")

    def wait(self, task_id: str, *, timeout: float = 600.0, interval: float = 0.05) -> Record:
        """Poll until the task finishes; raises TimeoutError with its last state otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if TaskStatus(task["status"]).finished:
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {task['status']} after {timeout} s")
            time.sleep(interval)


class Buckets(_Group):
    def create(
        self,
        bucket_name: str,
        *,
        bucket_schema: dict[str, Any] | None = None,
        unique_key: str | None = None,
        description: str = "",
    ) -> Record:
        body: dict[str, Any] = {
            "bucket_name": bucket_name,
            "description": description,
            "unique_key": unique_key,
        }
        if bucket_schema is not None:
            body["bucket_schema"] = bucket_schema
        return self._client.request("POST", "/v1/buckets", json=body)

    def get(self, bucket_identifier: str) -> Record:
        return self._client.request("GET", f"/v1/buckets/{bucket_identifier}")

    def list(self) -> list[Record]:
        return [Record(r) for r in self._client.request("GET", "/v1/buckets")["results"]]

    def update(self, bucket_identifier: str, **changes: Any) -> Record:
        return self._client.request("PATCH", f"/v1/buckets/{bucket_identifier}", json=changes)

    def delete(self, bucket_identifier: str) -> None:
        self._client.request("DELETE", f"/v1/buckets/{bucket_identifier}")


class Objects(_Group):
    def create(
        self,
        bucket_identifier: str,
        fields: dict[str, Any],
        blobs: list[dict[str, Any]] | None = None,
    ) -> Record:
        body = {"fields": fields, "blobs": blobs or []}
        return self._client.request("POST", f"/v1/buckets/{bucket_identifier}/objects", json=body)

    def create_batch(self, bucket_identifier: str, objects: list[dict[str, Any]]) -> Record:
        """``objects``: ``[{"fields": {...}, "blobs": [...]}, ...]``; valid ones are stored."""
        return self._client.request(
            "POST", f"/v1/buckets/{bucket_identifier}/objects/batch", json={"objects": objects}
        )

    def get(self, object_id: str) -> Record:
        return self._client.request("GET", f"/v1/objects/{object_id}")

    def list(self, bucket_identifier: str, *, limit: int = 100, offset: int = 0) -> Record:
        params = {"limit": limit, "offset": offset}
        return self._client.request(
            "GET", f"/v1/buckets/{bucket_identifier}/objects", params=params
        )

    def delete(self, object_id: str) -> None:
        self._client.request("DELETE", f"/v1/objects/{object_id}")


class Collections(_Group):
    diff: CollectionDiff  # services/evaluation/client.py

    def create(
        self,
        collection_name: str,
        *,
        source: dict[str, Any],
        feature_extractor: dict[str, Any],
        description: str = "",
    ) -> Record:
        body = {
            "collection_name": collection_name,
            "source": source,
            "feature_extractor": feature_extractor,
            "description": description,
        }
        return self._client.request("POST", "/v1/collections", json=body)

    def get(self, collection_identifier: str) -> Record:
        return self._client.request("GET", f"/v1/collections/{collection_identifier}")

    def list(self) -> list[Record]:
        return [Record(r) for r in self._client.request("GET", "/v1/collections")["results"]]

    def update(self, collection_identifier: str, **changes: Any) -> Record:
        return self._client.request(
            "PATCH", f"/v1/collections/{collection_identifier}", json=changes
        )

    def delete(self, collection_identifier: str, *, force: bool = False) -> None:
        self._client.request(
            "DELETE", f"/v1/collections/{collection_identifier}", params={"force": force}
        )

    def clone(self, collection_identifier: str, body: dict[str, Any]) -> Record:
        """Same extractor: shares vectors. Another extractor: needs ``trigger``."""
        return self._client.request(
            "POST", f"/v1/collections/{collection_identifier}/clone", json=body
        )

    def trigger(self, collection_identifier: str) -> Record:
        """Re-process the whole source; returns ``{batch_id, task_id}``."""
        return self._client.request("POST", f"/v1/collections/{collection_identifier}/trigger")


class FeatureExtractors(_Group):
    def list(self) -> list[Record]:
        """Every extractor: name, version, outputs with their Feature URIs, config hash."""
        return [Record(r) for r in self._client.request("GET", "/v1/feature-extractors")["results"]]


class Documents(_Group):
    def list(self, collection_identifier: str, *, limit: int = 100, offset: int = 0) -> Record:
        params = {"limit": limit, "offset": offset}
        return self._client.request(
            "GET", f"/v1/collections/{collection_identifier}/documents", params=params
        )

    def get(self, document_id: str) -> Record:
        return self._client.request("GET", f"/v1/documents/{document_id}")

    def lineage(self, document_id: str) -> Record:
        return self._client.request("GET", f"/v1/documents/{document_id}/lineage")


class Batches(_Group):
    def get(self, batch_id: str) -> Record:
        """A batch with its counts and per-document failures."""
        return self._client.request("GET", f"/v1/batches/{batch_id}")

    def retry(self, batch_id: str) -> Record:
        """Process the batch's failed documents again."""
        return self._client.request("POST", f"/v1/batches/{batch_id}/retry")


class Retrievers(_Group):
    evaluations: Evaluations  # services/evaluation/client.py
    benchmarks: Benchmarks

    def create(self, retriever_name: str, *, collection_identifiers: list[str], stages: list[dict[str, Any]],
               input_schema: dict[str, Any] | None = None, description: str = "") -> Record:  # fmt: skip
        """A stage pipeline (seed shape: ``{stage_name, stage_type, config: {stage_id, parameters}}``)."""
        body: dict[str, Any] = {"retriever_name": retriever_name, "collection_identifiers": collection_identifiers,
                                "stages": stages, "description": description}  # fmt: skip
        if input_schema is not None:
            body["input_schema"] = input_schema
        return self._client.request("POST", "/v1/retrievers", json=body)

    def get(self, retriever_identifier: str) -> Record:
        return self._client.request("GET", f"/v1/retrievers/{retriever_identifier}")

    def list(self) -> list[Record]:
        return [Record(r) for r in self._client.request("GET", "/v1/retrievers")["results"]]

    def clone(self, retriever_identifier: str, body: dict[str, Any]) -> Record:
        """Overrides: ``retriever_name``, ``stages``, ``collection_identifiers``; collections are shared."""
        return self._client.request(
            "POST", f"/v1/retrievers/{retriever_identifier}/clone", json=body
        )

    def execute(
        self, retriever_identifier: str, inputs: dict[str, Any], *, limit: int | None = None
    ) -> Record:
        body: dict[str, Any] = {"inputs": inputs}
        if limit is not None:
            body["limit"] = limit
        return self._client.request(
            "POST", f"/v1/retrievers/{retriever_identifier}/execute", json=body
        )

    def explain(self, retriever_identifier: str) -> Record:
        return self._client.request("POST", f"/v1/retrievers/{retriever_identifier}/explain")

    def delete(self, retriever_identifier: str) -> None:
        self._client.request("DELETE", f"/v1/retrievers/{retriever_identifier}")


class Aliases(_Group):
    def create(self, alias_name: str, retriever_id: str) -> Record:
        return self._client.request(
            "POST", "/v1/aliases", json={"alias_name": alias_name, "retriever_id": retriever_id}
        )

    def get(self, alias_name: str) -> Record:
        return self._client.request("GET", f"/v1/aliases/{alias_name}")

    def move(self, alias_name: str, retriever_id: str, reason: str = "") -> Record:
        """Promote: point the alias at another retriever (recorded with who, when, why)."""
        return self._client.request(
            "POST",
            f"/v1/aliases/{alias_name}/move",
            json={"retriever_id": retriever_id, "reason": reason},
        )

    def rollback(self, alias_name: str, reason: str = "") -> Record:
        return self._client.request(
            "POST", f"/v1/aliases/{alias_name}/rollback", json={"reason": reason}
        )

    def history(self, alias_name: str) -> Record:
        return self._client.request("GET", f"/v1/aliases/{alias_name}/history")

    def canary(
        self, alias_name: str, retriever_id: str, percent: float, reason: str = ""
    ) -> Record:
        """Serve ``percent`` of callers (stable by ``user_id``/``session_id``) from ``retriever_id``."""
        body = {"retriever_id": retriever_id, "percent": percent, "reason": reason}
        return self._client.request("POST", f"/v1/aliases/{alias_name}/canary", json=body)

    def shadow(self, alias_name: str, retriever_id: str, reason: str = "") -> Record:
        """Also run ``retriever_id`` on every request, after the response, and compare."""
        body = {"retriever_id": retriever_id, "reason": reason}
        return self._client.request("POST", f"/v1/aliases/{alias_name}/shadow", json=body)

    def clear_canary(self, alias_name: str, reason: str = "") -> Record:
        return self._client.request(
            "DELETE", f"/v1/aliases/{alias_name}/canary", json={"reason": reason}
        )

    def clear_shadow(self, alias_name: str, reason: str = "") -> Record:
        return self._client.request(
            "DELETE", f"/v1/aliases/{alias_name}/shadow", json={"reason": reason}
        )

    def shadow_report(self, alias_name: str) -> Record:
        """Overlap@k, mean rank shift and latency delta the alias's shadows measured."""
        return self._client.request("GET", f"/v1/aliases/{alias_name}/shadow")

    def execute(
        self, alias_name: str, inputs: dict[str, Any], *, limit: int | None = None,
        user_id: str | None = None, session_id: str | None = None,
    ) -> Record:  # fmt: skip
        """``user_id`` (else ``session_id``) picks the canary variant; the reply's ``served_by``
        and ``variant`` say which retriever answered."""
        body: dict[str, Any] = {"inputs": inputs}
        for key, value in (("limit", limit), ("user_id", user_id), ("session_id", session_id)):
            if value is not None:
                body[key] = value
        return self._client.request("POST", f"/v1/aliases/{alias_name}/execute", json=body)


class Keys(_Group):
    def create(
        self, name: str, permissions: list[str], namespace_ids: list[str] | None = None
    ) -> Record:
        body = {"name": name, "permissions": permissions, "namespace_ids": namespace_ids}
        return self._client.request("POST", "/v1/keys", json=body)

    def revoke(self, key_id: str) -> None:
        self._client.request("DELETE", f"/v1/keys/{key_id}")


class Client:
    datasets: Datasets  # services/evaluation/client.py
    interactions: Interactions

    def __init__(
        self, base_url: str, api_key: str, *, namespace: str | None = None, timeout: float = 60.0
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        self._server: _EmbeddedServer | None = None
        self._groups()

    def _groups(self) -> None:
        self.namespaces = Namespaces(self)
        self.tasks = Tasks(self)
        self.keys = Keys(self)
        self.buckets = Buckets(self)
        self.objects = Objects(self)
        self.collections = Collections(self)
        self.webhooks = Webhooks(self)
        self.feature_extractors = FeatureExtractors(self)
        self.documents = Documents(self)
        self.batches = Batches(self)
        self.retrievers = Retrievers(self)
        self.aliases = Aliases(self)
        attach_evaluation(self)  # datasets, interactions, retrievers.evaluations/benchmarks
        self.taxonomies, self.clusters = Taxonomies(self), Clusters(self)

    @classmethod
    def embedded(cls, data_dir: str | os.PathLike[str], *, namespace: str | None = None) -> Client:
        """Run every service in-process on ``data_dir`` (created if missing) and connect to it.

        The first call bootstraps an organization and stores its admin key in ``data_dir/admin.key``.
        """
        server = _EmbeddedServer(Path(data_dir))
        client = cls(server.base_url, server.api_key, namespace=namespace)
        client._server = server
        return client

    def with_namespace(self, namespace: str) -> Client:
        """The same connection, sending ``X-Namespace: namespace``."""
        twin = object.__new__(Client)
        twin.__dict__.update(self.__dict__)
        twin._http = httpx.Client(
            base_url=self._http.base_url,
            headers={**self._http.headers, "X-Namespace": namespace},
            timeout=self._http.timeout,
        )
        twin._groups()
        return twin

    def request(self, method: str, path: str, **kwargs: Any) -> Record:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise _ERRORS.get(response.status_code, ApiError)(
                f"HTTP {response.status_code}: {message}"
            )
        return Record(response.json()) if response.content else Record()

    def close(self) -> None:
        self._http.close()
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _EmbeddedServer:
    """The embedded runtime served by uvicorn on a free loopback port, in a daemon thread."""

    def __init__(self, data_dir: Path) -> None:
        from offshoot.runtime import Runtime

        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port = _free_port()
        self.base_url = f"http://127.0.0.1:{self._port}"
        self.api_key = ""
        self._server: uvicorn.Server | None = None

        async def serve() -> None:
            runtime = await Runtime.open(data_dir=data_dir)
            try:
                self.api_key = await _admin_key(runtime, data_dir)
                config = uvicorn.Config(
                    runtime.asgi,
                    host="127.0.0.1",
                    port=self._port,
                    log_level="warning",
                    lifespan="off",
                )
                self._server = uvicorn.Server(config)
                serving = asyncio.create_task(self._server.serve())
                while not self._server.started:  # noqa: ASYNC110 (uvicorn offers only a flag)
                    await asyncio.sleep(0.01)
                self._ready.set()
                await serving
            finally:
                await runtime.close()

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException as error:  # surfaced to the caller below
                self._error = error
                self._ready.set()

        self._thread = threading.Thread(target=run, name="offshoot-embedded", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=120)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=30)


async def _admin_key(runtime: Any, data_dir: Path) -> str:
    path = data_dir / "admin.key"
    if path.exists():
        return path.read_text().strip()
    _, key = await runtime.catalog.bootstrap()
    path.write_text(key.api_key + "\n")
    path.chmod(0o600)
    return str(key.api_key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
