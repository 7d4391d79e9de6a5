"""``open_event_store`` URLs that name no shared storage (so they are not in the backend suite)."""

from __future__ import annotations

import pytest

from libs.errors import InvalidInputError
from libs.eventstore import SqliteEventStore, open_event_store

from .helpers import new_events, versions


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:"])
async def test_an_in_memory_sqlite_store_works(url: str) -> None:
    store = await open_event_store(url)
    try:
        assert isinstance(store, SqliteEventStore)
        await store.append("a", new_events(2), expected_version=0)
        await store.fork("b", "a")
        assert versions(await store.read_stream("b")) == [("a", 1), ("a", 2)]
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["mysql://localhost/db", "sqlite://", "sqlite:///", "events.db"])
async def test_an_unsupported_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        await open_event_store(url)
