"""The catalog suite runs on both stacks through the HTTP API: embedded (SQLite + in-process
bus) and distributed (PostgreSQL + Kafka). Only adapters differ; every assertion is the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from offshoot.runtime import Runtime
from tests.infra import kafka_servers, postgres_schema


@dataclass
class Api:
    """An HTTP client on the runtime, with the bootstrap admin key; ``as_key`` switches keys."""

    runtime: Runtime
    http: httpx.AsyncClient
    admin_key: str

    def headers(self, key: str | None = None, namespace: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        if namespace:
            headers["X-Namespace"] = namespace
        return headers

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        namespace: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {**self.headers(key, namespace), **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def wait_task(self, task_id: str, **kwargs: Any) -> dict[str, Any]:
        """The finished task; up to a minute, since the first task of a fresh machine may build
        a model (distilling minilm-static@v1 takes ~20 s once)."""
        for _ in range(3000):
            task: dict[str, Any] = await self.ok("GET", f"/v1/tasks/{task_id}", **kwargs)
            if task["status"] not in ("PENDING", "IN_PROGRESS", "PROCESSING"):
                return task
            await asyncio.sleep(0.02)
        raise AssertionError(f"task {task_id} did not finish")


@pytest.fixture
def runtime_options() -> dict[str, Any]:
    """Extra ``Runtime.open`` arguments; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
async def api(
    request: pytest.FixtureRequest, tmp_path: Path, runtime_options: dict[str, Any]
) -> AsyncIterator[Api]:
    if request.param == "embedded":
        runtime = await Runtime.open(data_dir=tmp_path, **runtime_options)
        async with _client(runtime) as api:
            yield api
        return
    servers = kafka_servers()
    async with postgres_schema("catalog") as url:
        runtime = await Runtime.open(
            data_dir=tmp_path, store_url=url, bus_url=f"kafka://{servers}", **runtime_options
        )
        async with _client(runtime) as api:
            yield api


class _client:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __aenter__(self) -> Api:
        _, key = await self.runtime.catalog.bootstrap(f"org-{uuid.uuid4().hex[:6]}")
        transport = httpx.ASGITransport(app=self.runtime.asgi)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://offshoot.test")
        return Api(self.runtime, self.http, key.api_key)

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()
        await self.runtime.close()
