"""The reads every service's read model repeats.

Services keep a resource as one row whose ``body`` column holds its JSON, keyed by namespace and
``<kind>_id``, with a ``<kind>_name`` column for look-ups by name and (for deletable kinds) a
``deleted`` flag. Callers name the table and the kind; both are constants of the calling read
model, never user input, so they are spliced into the SQL.
"""

from __future__ import annotations

import json
from typing import Any

from libs.eventstore import Transaction

__all__ = ["bodies", "first_body", "live_bodies", "live_by_id_or_name"]


async def bodies(tx: Transaction, sql: str, *args: Any) -> list[dict[str, Any]]:
    """The decoded ``body`` of every row ``sql`` selects."""
    return [json.loads(row["body"]) for row in await tx.fetch(sql, *args)]


async def first_body(tx: Transaction, sql: str, *args: Any) -> dict[str, Any] | None:
    """The decoded ``body`` of the first row ``sql`` selects, if any."""
    rows = await tx.fetch(sql, *args)
    return json.loads(rows[0]["body"]) if rows else None


def _live(deletable: bool) -> str:
    return " AND NOT deleted" if deletable else ""


async def live_bodies(
    tx: Transaction, table: str, kind: str, namespace_id: str, *, deletable: bool = True
) -> list[dict[str, Any]]:
    """A namespace's resources of one kind, by name then id."""
    return await bodies(
        tx,
        f"SELECT body FROM {table} WHERE namespace_id = $1{_live(deletable)} "
        f"ORDER BY {kind}_name, {kind}_id",
        namespace_id,
    )


async def live_by_id_or_name(
    tx: Transaction,
    table: str,
    kind: str,
    namespace_id: str,
    identifier: str,
    *,
    deletable: bool = True,
) -> dict[str, Any] | None:
    """One resource of a namespace by id, else by name (an id wins over a name equal to it)."""
    return await first_body(
        tx,
        f"SELECT body FROM {table} WHERE namespace_id = $1{_live(deletable)} "
        f"AND ({kind}_id = $2 OR {kind}_name = $2) ORDER BY {kind}_id = $2 DESC",
        namespace_id,
        identifier,
    )
