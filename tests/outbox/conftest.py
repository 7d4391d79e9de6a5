"""The outbox suite runs on both stacks: embedded (SQLite + LocalBus) and distributed
(PostgreSQL + Kafka), the pairs the product actually runs with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.bus import Bus, LocalBus
from libs.eventstore import EventStore, open_event_store
from tests.infra import kafka_servers, new_kafka_bus, postgres_schema


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
    servers = kafka_servers()
    buses: list[Bus] = []

    def make_bus() -> Bus:
        buses.append(new_kafka_bus(servers))
        return buses[-1]

    async with postgres_schema("outbox") as url:
        yield Stack("distributed", url, make_bus, topic)
        for bus in buses:
            await bus.stop()


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    opened = await open_event_store(stack.store_url)
    yield opened
    await opened.close()
