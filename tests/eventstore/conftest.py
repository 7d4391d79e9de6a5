"""One shared suite for every event-store adapter: each test runs once per backend.

``backend`` names a fresh, empty storage location (a SQLite file in the test's temporary
directory; a PostgreSQL schema of its own, dropped afterwards) and opens stores on it, so a
test can reopen the same store or open a second instance beside it. The PostgreSQL half needs
``OFFSHOOT_DATABASE_URL`` (the Makefile exports it) and is skipped, with that reason, without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.eventstore import EventStore, open_event_store
from tests.infra import postgres_schema


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    unreachable_url: str

    async def open(self) -> EventStore:
        return await open_event_store(self.url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend(
            "sqlite",
            url=f"sqlite:///{tmp_path / 'events.sqlite3'}",
            unreachable_url=f"sqlite:///{tmp_path / 'no-such-directory' / 'events.sqlite3'}",
        )
        return
    async with postgres_schema("eventstore") as url:
        yield Backend(
            "postgres", url=url, unreachable_url="postgresql://postgres@127.0.0.1:1/offshoot"
        )


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[EventStore]:
    """A fresh, empty store."""
    opened = await backend.open()
    yield opened
    await opened.close()
