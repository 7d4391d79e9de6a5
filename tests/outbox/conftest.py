"""The outbox suite runs on both stacks: embedded (SQLite + LocalBus) and distributed
(PostgreSQL + Kafka), the pairs the product actually runs with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.eventstore import EventStore, open_event_store
from tests.infra import Stack, stack_of


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    # One process: in the embedded stack every "bus" is the same in-process broker.
    async with stack_of(request.param, tmp_path, "outbox", one_local_bus=True) as made:
        yield made


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[EventStore]:
    opened = await open_event_store(stack.store_url)
    yield opened
    await opened.close()
