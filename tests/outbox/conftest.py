"""The outbox suite runs on both stacks: embedded (SQLite + LocalBus) and distributed
(PostgreSQL + Kafka), the pairs the product actually runs with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from libs.bus import Bus, LocalBus
from libs.eventstore import EventStore, open_event_store
from tests.bus.conftest import kafka_servers, new_kafka_bus
from tests.eventstore.conftest import DATABASE_URL


@dataclass
class Stack:
    name: str
    store_url: str
    make_bus: Callable[[], Bus]
    topic: str


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    topic = f"outbox-test-{uuid.uuid4().hex[:10]}"
    if request.param == "embedded":
        shared = LocalBus()  # one process: every "bus" is the same in-process broker
        yield Stack("embedded", f"sqlite:///{tmp_path / 'events.sqlite3'}", lambda: shared, topic)
        await shared.stop()
        return
    if not DATABASE_URL:
        pytest.skip("OFFSHOOT_DATABASE_URL is not set (make test sets it)")
    servers = kafka_servers()
    schema = f"test_outbox_{uuid.uuid4().hex[:12]}"
    buses: list[Bus] = []

    def make_bus() -> Bus:
        buses.append(new_kafka_bus(servers))
        return buses[-1]

    yield Stack("distributed", f"{DATABASE_URL}?schema={schema}", make_bus, topic)
    for bus in buses:
        await bus.stop()
    connection = await asyncpg.connect(DATABASE_URL)
    await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await connection.close()


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    opened = await open_event_store(stack.store_url)
    yield opened
    await opened.close()
