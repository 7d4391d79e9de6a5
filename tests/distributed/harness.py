"""Real ``offshoot serve --role X`` processes for the distributed tests.

A ``Cluster`` is one deployment: a fresh PostgreSQL schema (``tests/infra.postgres_schema``), a
topic prefix of its own on the shared Kafka broker (so concurrent test runs never share a
partition or a consumer group), one data directory. ``start`` launches a role's process on a
free port and returns once its ``/readyz`` says ready; ``kill`` (SIGKILL), ``terminate``
(SIGTERM, graceful) and ``restart`` act on it; ``close`` ends every process it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from libs.eventstore import open_event_store
from services.catalog.service import CatalogService
from tests.infra import database_url, kafka_servers, postgres_schema

READY_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    roles: str
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    # a data directory of its own (Qdrant Edge vectors one process at a time); else the cluster's
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    store_url: str
    kafka: str
    prefix: str
    data_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def environment(self, process: Process) -> dict[str, str]:
        return {
            **os.environ,
            "OFFSHOOT_DATABASE_URL": self.store_url,
            "OFFSHOOT_KAFKA": self.kafka,
            "OFFSHOOT_BUS_PREFIX": self.prefix,
            "OFFSHOOT_DATA_DIR": str(process.data_dir or self.data_dir),
            "OFFSHOOT_PORT": str(process.port),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }

    async def start(
        self, name: str, roles: str | None = None, *, data_dir: Path | None = None
    ) -> Process:
        """Launch (or relaunch) process ``name`` running ``roles`` (default: ``name``) and wait
        until it is ready; ``data_dir``: its own instead of the cluster's."""
        process = self.processes.get(name) or Process(
            name, roles or name, free_port(), self.data_dir / f"{name}.log", data_dir=data_dir
        )
        self.processes[name] = process
        with process.log.open("ab") as log:
            process.popen = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                [sys.executable, "-m", "offshoot.services", process.roles],
                env=self.environment(process),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self.wait_ready(process)
        return process

    async def wait_ready(self, process: Process) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        async with httpx.AsyncClient(timeout=5.0) as http:
            while time.monotonic() < deadline:
                if not process.alive():
                    raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
                try:
                    answer = await http.get(f"{process.url}/readyz")
                    if answer.status_code == 200:
                        return
                    last = answer.text
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.25)
        raise AssertionError(
            f"{process.name} not ready in {READY_TIMEOUT} s (/readyz: {last}):\n"
            f"{process.log_tail()}"
        )

    async def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs (offsets, outbox and batches stay as they were)."""
        await self._signal(name, signal.SIGKILL, timeout=10)

    async def terminate(self, name: str, timeout: float = 60.0) -> int:  # noqa: ASYNC109
        """SIGTERM and wait for the graceful shutdown; return the exit code."""
        return await self._signal(name, signal.SIGTERM, timeout=timeout)

    async def restart(self, name: str) -> Process:
        return await self.start(name)

    async def _signal(self, name: str, sig: signal.Signals, *, timeout: float) -> int:  # noqa: ASYNC109
        process = self.processes[name]
        assert process.popen is not None
        if process.alive():
            process.popen.send_signal(sig)
        deadline = time.monotonic() + timeout
        while process.popen.poll() is None:
            if time.monotonic() > deadline:
                process.popen.kill()
                process.popen.wait()
                raise AssertionError(f"{name} did not stop on {sig.name}:\n{process.log_tail()}")
            await asyncio.sleep(0.1)
        return process.popen.returncode

    def close(self) -> None:
        """End every process still running (SIGTERM, then SIGKILL after 20 s)."""
        running = [p.popen for p in self.processes.values() if p.alive() and p.popen]
        for popen in running:
            popen.send_signal(signal.SIGTERM)
        for popen in running:
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()

    async def bootstrap(self) -> str:
        """A first organization in this cluster's catalog; returns its admin API key."""
        store = await open_event_store(self.store_url)
        try:
            catalog = CatalogService(store)
            await catalog.start()
            _, key = await catalog.bootstrap(f"org-{uuid.uuid4().hex[:6]}")
            return key.api_key
        finally:
            await store.close()


@asynccontextmanager
async def cluster(
    tmp_path: Path, label: str, *, kafka: str | None = None, store_url: str | None = None
) -> AsyncIterator[Cluster]:
    """A fresh deployment; every process it started is ended afterwards, its schema dropped.
    ``kafka`` / ``store_url``: a dedicated broker / database (``tests/distributed/servers``)
    instead of the shared ones."""
    if store_url is not None:
        deployment = Cluster(
            store_url, kafka or kafka_servers(), f"t{uuid.uuid4().hex[:10]}.", tmp_path
        )
        try:
            yield deployment
        finally:
            deployment.close()
        return
    database_url()
    servers = kafka or kafka_servers()
    async with postgres_schema(label) as url:
        deployment = Cluster(url, servers, f"t{uuid.uuid4().hex[:10]}.", tmp_path)
        try:
            yield deployment
        finally:
            deployment.close()
