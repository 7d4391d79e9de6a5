"""Bus events → durable delivery rows: one row per (subscription, event), written once.

The bus delivers at least once and its dedupe is in memory; the delivery id is derived from
``(webhook_id, event_id)`` and the rows of one event are inserted in one transaction with
``ON CONFLICT DO NOTHING``, so a redelivered event — after a restart, on another member of the
group, or twice in a row — never creates a second delivery.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from contracts.envelope import Envelope
from libs.eventstore import EventStore

__all__ = ["REDACTED_FIELDS", "Dispatcher", "delivery_id_for", "matches", "payload_of"]

REDACTED_FIELDS = frozenset({"secret", "secret_sha256"})
"""Top-level data fields never sent to receivers (another subscription's signing secret)."""


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """``*`` matches every type, ``a.*`` every type that starts with ``a.``, anything else itself."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def delivery_id_for(webhook_id: str, event_id: str) -> str:
    """The one delivery id an event can have for a subscription (``dlv_`` + 20 hex digits)."""
    return "dlv_" + hashlib.sha256(f"{webhook_id}\x00{event_id}".encode()).hexdigest()[:20]


def payload_of(envelope: Envelope) -> str:
    """The request body, serialised once so every attempt sends (and signs) the same bytes."""
    data = {k: v for k, v in envelope.data.items() if k not in REDACTED_FIELDS}
    body: dict[str, Any] = {
        "event_id": str(envelope.event_id),
        "type": envelope.type,
        "namespace_id": envelope.namespace_id,
        "resource": envelope.stream_id,
        "occurred_at": envelope.occurred_at.isoformat(),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


class Dispatcher:
    """The ``webhooks`` consumer group's handler.

    A subscription receives the events of its own namespace that occurred at or after it was
    created (a lagging consumer must not send it older ones), except its own creation event.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        refresh: Callable[[], Awaitable[None]],
        wake: Callable[[], None],
    ) -> None:
        """``refresh`` brings the subscriptions up to date before matching (one may have been
        created by another process); ``wake`` tells the worker new rows are due."""
        self._store = store
        self._refresh = refresh
        self._wake = wake

    async def __call__(self, envelope: Envelope) -> None:
        await self.handle(envelope)

    async def handle(self, envelope: Envelope) -> int:
        """Queue the deliveries ``envelope`` calls for; return how many rows were new."""
        if envelope.namespace_id is None:
            return 0  # organization-level events belong to no namespace's subscribers
        await self._refresh()
        event_id = str(envelope.event_id)
        occurred = envelope.occurred_at.timestamp()
        now = time.time()
        async with self._store.transaction() as tx:
            subscriptions = await tx.fetch(
                "SELECT webhook_id, event_types, created_at, created_event_id "
                "FROM whk_subscriptions WHERE namespace_id = $1 AND status = 'ACTIVE'",
                envelope.namespace_id,
            )
            wanted = [
                s["webhook_id"]
                for s in subscriptions
                if occurred >= s["created_at"]
                and s["created_event_id"] != event_id
                and matches(json.loads(s["event_types"]), envelope.type)
            ]
            if not wanted:
                return 0
            body = payload_of(envelope)
            added = 0
            for webhook_id in wanted:
                delivery_id = delivery_id_for(webhook_id, event_id)
                if await tx.fetch(
                    "SELECT 1 FROM whk_deliveries WHERE delivery_id = $1", delivery_id
                ):
                    continue
                added += 1
                await tx.execute(
                    "INSERT INTO whk_deliveries (delivery_id, webhook_id, namespace_id, event_id, "
                    "event_type, body, status, attempts, replays, next_attempt_at, created_at, "
                    "updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', 0, 0, $7, $7, $7) "
                    "ON CONFLICT DO NOTHING",
                    delivery_id, webhook_id, envelope.namespace_id,
                    event_id, envelope.type, body, now,
                )  # fmt: skip
        if added:
            self._wake()
        return added
