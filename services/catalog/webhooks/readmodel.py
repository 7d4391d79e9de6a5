"""The webhook tables, beside the catalog's events, and the projection of subscription events.

``whk_subscriptions`` is a projection of ``webhook.created``/``webhook.deleted`` (rebuildable
from position 0). ``whk_deliveries`` and ``whk_attempts`` are the durable work queue the
dispatcher fills from the bus and the worker drains: they are not rebuilt (a rebuild clears
only the subscriptions), because a queue rebuilt from events would re-send what was delivered.

Times are epoch seconds (``DOUBLE PRECISION``) so the worker compares them in SQL on both
backends; records shown to users carry ISO-8601 strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contracts.webhooks import WebhookCreated, WebhookDeleted
from libs.event_codec import from_recorded
from libs.eventstore import RecordedEvent, TableProjection, Transaction

__all__ = ["TABLES", "WebhookProjection", "delivery_record", "iso", "webhook_record"]

TABLES = [
    """CREATE TABLE IF NOT EXISTS whk_subscriptions (
        webhook_id TEXT PRIMARY KEY, namespace_id TEXT NOT NULL, organization_id TEXT NOT NULL,
        url TEXT NOT NULL, event_types TEXT NOT NULL, secret TEXT NOT NULL,
        description TEXT NOT NULL, status TEXT NOT NULL, created_event_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, deleted_at DOUBLE PRECISION)""",
    """CREATE INDEX IF NOT EXISTS whk_subscriptions_namespace
        ON whk_subscriptions (namespace_id, status)""",
    """CREATE TABLE IF NOT EXISTS whk_deliveries (
        delivery_id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, namespace_id TEXT NOT NULL,
        event_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL,
        status TEXT NOT NULL, attempts BIGINT NOT NULL, replays BIGINT NOT NULL,
        next_attempt_at DOUBLE PRECISION, claim TEXT, last_error TEXT, last_status_code BIGINT,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        delivered_at DOUBLE PRECISION, UNIQUE (webhook_id, event_id))""",
    """CREATE INDEX IF NOT EXISTS whk_deliveries_due ON whk_deliveries (status, next_attempt_at)""",
    """CREATE INDEX IF NOT EXISTS whk_deliveries_webhook
        ON whk_deliveries (webhook_id, created_at)""",
    """CREATE TABLE IF NOT EXISTS whk_attempts (
        delivery_id TEXT NOT NULL, replay BIGINT NOT NULL, attempt BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL, status_code BIGINT, error TEXT,
        duration_ms DOUBLE PRECISION NOT NULL, PRIMARY KEY (delivery_id, replay, attempt))""",
]

_TYPES = frozenset({WebhookCreated.type_name, WebhookDeleted.type_name})


class WebhookProjection(TableProjection):
    """Subscriptions from the catalog store's events; every other event type is skipped unread."""

    name = "webhooks"

    create_statements = TABLES
    tables = ("whk_subscriptions",)  # deliveries come from the bus, not the store

    async def apply(self, recorded: RecordedEvent, tx: Transaction) -> None:
        if recorded.type not in _TYPES:
            return  # decoding would fail on types this process has never imported
        at = recorded.recorded_at.timestamp()
        match from_recorded(recorded):
            case WebhookCreated() as e:
                await tx.execute(
                    "INSERT INTO whk_subscriptions VALUES "
                    "($1, $2, $3, $4, $5, $6, $7, 'ACTIVE', $8, $9, NULL)",
                    e.webhook_id, e.namespace_id, e.organization_id, e.url,
                    json.dumps(e.event_types), e.secret, e.description,
                    str(recorded.event_id), at,
                )  # fmt: skip
            case WebhookDeleted() as e:
                await tx.execute(
                    "UPDATE whk_subscriptions SET status = 'DELETED', deleted_at = $1 "
                    "WHERE webhook_id = $2",
                    at, e.webhook_id,
                )  # fmt: skip
                await tx.execute(
                    "UPDATE whk_deliveries SET status = 'DEAD', last_error = $1, claim = NULL, "
                    "next_attempt_at = NULL, updated_at = $2 "
                    "WHERE webhook_id = $3 AND status = 'PENDING'",
                    "webhook deleted before delivery", at, e.webhook_id,
                )  # fmt: skip
            case _:  # pragma: no cover - filtered above
                pass


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC, for records shown to users."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def webhook_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: never with its secret."""
    return {
        "webhook_id": row["webhook_id"],
        "namespace_id": row["namespace_id"],
        "url": row["url"],
        "event_types": json.loads(row["event_types"]),
        "description": row["description"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
    }


def delivery_record(row: Mapping[str, Any], attempts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A delivery with its attempt history (every replay round, oldest first)."""
    return {
        "delivery_id": row["delivery_id"],
        "webhook_id": row["webhook_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "replays": row["replays"],
        "last_error": row["last_error"],
        "last_status_code": row["last_status_code"],
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == "PENDING" else None,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "delivered_at": iso(row["delivered_at"]),
        "payload": json.loads(row["body"]),
        "history": [
            {
                "replay": a["replay"],
                "attempt": a["attempt"],
                "at": iso(a["at"]),
                "status_code": a["status_code"],
                "error": a["error"],
                "duration_ms": a["duration_ms"],
            }
            for a in attempts
        ],
    }
