"""The event store: the port (``base``), its SQLite and PostgreSQL adapters, and projections.

``open_event_store(url)`` picks the adapter from a URL:

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's convention),
- ``sqlite://:memory:`` (or ``sqlite:///:memory:``),
- ``postgresql://user@host:port/db`` (also ``postgres://``), with an optional ``?schema=name``
  query parameter that puts every table in that PostgreSQL schema.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from libs.errors import InvalidInputError
from libs.eventstore.base import (
    EventStore,
    ForkInfo,
    JsonObject,
    NewEvent,
    RecordedEvent,
    Transaction,
    event_ids_for,
    iterate_all,
)
from libs.eventstore.postgres import PostgresEventStore
from libs.eventstore.projections import (
    Projection,
    ProjectionRunner,
    TableProjection,
    wait_for_append_or_stop,
)
from libs.eventstore.sqlite import SqliteEventStore

__all__ = [
    "EventStore",
    "ForkInfo",
    "JsonObject",
    "NewEvent",
    "PostgresEventStore",
    "Projection",
    "ProjectionRunner",
    "RecordedEvent",
    "SqliteEventStore",
    "TableProjection",
    "Transaction",
    "event_ids_for",
    "iterate_all",
    "open_event_store",
    "wait_for_append_or_stop",
]


async def open_event_store(url: str) -> EventStore:
    """Open the store ``url`` names (see the module docstring)."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path in (":memory:", "/:memory:"):
            return await SqliteEventStore.open(":memory:")
        if not path.startswith("/") or path == "/":
            raise InvalidInputError(f"SQLite URL {url!r} has no path (sqlite:///path/to/file.db)")
        return await SqliteEventStore.open(path.removeprefix("/"))
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for key, value in query if key == "schema"), None)
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        return await PostgresEventStore.open(urlunsplit(parts._replace(query=rest)), schema=schema)
    raise InvalidInputError(
        f"unsupported event store URL {url!r}: use sqlite:///path, sqlite://:memory: "
        "or postgresql://..."
    )
