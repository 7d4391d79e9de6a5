"""The real servers of the integration tests: where they are, or a skip that says how to get them.

``make test`` starts PostgreSQL and Kafka (``deploy/``) and exports both variables; without them
the tests that need a server are skipped with this reason, never failed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from libs.bus import KafkaBus


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
