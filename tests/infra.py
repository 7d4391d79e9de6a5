"""The real servers of the integration tests: where they are, or a skip that says how to get them.

``make test`` starts PostgreSQL and Kafka (``deploy/``) and exports both variables; without them
the tests that need a server are skipped with this reason, never failed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from libs.bus import Bus, KafkaBus, LocalBus


def database_url() -> str:
    url = os.environ.get("OFFSHOOT_DATABASE_URL", "").strip()
    if not url:
        pytest.skip(
            "OFFSHOOT_DATABASE_URL is not set: start PostgreSQL with `make up` (make test does)"
        )
    return url


def kafka_servers() -> str:
    servers = os.environ.get("OFFSHOOT_KAFKA", "").strip()
    if not servers:
        pytest.skip("OFFSHOOT_KAFKA is not set: start Kafka with `make up` (make test does)")
    return servers


def new_kafka_bus(servers: str) -> KafkaBus:
    """A Kafka bus tuned for tests: fast heartbeats so rebalances settle in a few hundred ms."""
    return KafkaBus(
        servers,
        client_id="offshoot-tests",
        session_timeout_ms=6_000,  # the broker's group.min.session.timeout.ms
        heartbeat_interval_ms=100,
        join_timeout=20.0,
        graceful_timeout=10.0,
    )


@asynccontextmanager
async def postgres_schema(label: str) -> AsyncIterator[str]:
    """A store URL in a fresh PostgreSQL schema of its own, dropped afterwards."""
    url = database_url()
    schema = f"test_{label}_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    finally:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()


@dataclass
class Stack:
    """An event store URL and a bus factory of one kind: embedded or distributed."""

    name: str
    store_url: str
    make_bus: Callable[[], Bus]
    topic: str


@asynccontextmanager
async def stack_of(
    kind: str, tmp_path: Path, label: str, *, one_local_bus: bool
) -> AsyncIterator[Stack]:
    """``embedded``: SQLite + LocalBus (``one_local_bus``: every factory call shares one broker,
    as in one process; otherwise each call is a new process's bus). ``distributed``: a fresh
    PostgreSQL schema + Kafka. Buses made are stopped afterwards."""
    topic = f"{label}-test-{uuid.uuid4().hex[:10]}"
    buses: list[Bus] = []

    def make(new: Callable[[], Bus]) -> Callable[[], Bus]:
        def build() -> Bus:
            if not (one_local_bus and buses):
                buses.append(new())
            return buses[-1]

        return build

    try:
        if kind == "embedded":
            yield Stack(kind, f"sqlite:///{tmp_path / f'{label}.sqlite3'}", make(LocalBus), topic)
        else:
            servers = kafka_servers()
            async with postgres_schema(label) as url:
                yield Stack(kind, url, make(lambda: new_kafka_bus(servers)), topic)
    finally:
        for bus in buses:
            await bus.stop()
