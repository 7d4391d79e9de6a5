"""The webhook service: subscriptions as namespace events, deliveries as a durable queue.

- create/delete append ``webhook.created``/``webhook.deleted`` to the namespace's stream in the
  catalog store and project them before returning (a caller reads its own writes);
- the dispatcher (consumer group ``webhooks`` on ``offshoot.events``) turns matching events of
  every service into delivery rows; the worker sends them with retries (``worker.py``);
- the delivery log is read from those rows, and a replay re-queues one with its attempts reset.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import time
from enum import StrEnum
from typing import Any

from contracts import topics
from contracts.auth import Permission
from contracts.webhooks import CreateWebhook, WebhookCreated, WebhookDeleted
from libs.auth import Principal
from libs.bus import Bus, consume_envelopes
from libs.errors import NotFoundError
from libs.event_codec import to_new_event
from libs.eventstore import EventStore, ProjectionRunner, Transaction, event_ids_for
from services.catalog.webhooks.dispatcher import Dispatcher
from services.catalog.webhooks.readmodel import WebhookProjection, delivery_record, webhook_record
from services.catalog.webhooks.signing import generate_secret
from services.catalog.webhooks.worker import (
    DeliveryWorker,
    HttpClientFactory,
    RetryPolicy,
    default_http_client,
)

__all__ = ["DeliveryStatus", "WebhookService"]


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"


def _webhook_id(namespace_id: str, command_id: str) -> str:
    """Derived from the command, so a retried create finds the subscription it made."""
    return "whk_" + hashlib.sha256(f"{namespace_id}\x00{command_id}".encode()).hexdigest()[:20]


class WebhookService:
    """Subscriptions, the delivery log and replays; ``start``/``stop`` run the delivery worker."""

    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        http_client_factory: HttpClientFactory = default_http_client,
        policy: RetryPolicy | None = None,
        topic: str = topics.EVENTS,
        group: str = "webhooks",
        request_timeout: float = 10.0,
        poll_interval: float = 1.0,
        concurrency: int = 8,
    ) -> None:
        """``store`` is the catalog's store (subscriptions live in namespace streams); ``topic``
        must exist on ``bus`` (the runtime creates it). The other options tune the worker."""
        self.store = store
        self.bus = bus
        self.policy = policy or RetryPolicy()
        self.topic = topic
        self.group = group
        self._runner = ProjectionRunner(store, WebhookProjection())
        self._refresh_lock = asyncio.Lock()
        self.worker = DeliveryWorker(
            store,
            policy=self.policy,
            http_client_factory=http_client_factory,
            request_timeout=request_timeout,
            poll_interval=poll_interval,
            concurrency=concurrency,
        )
        self.dispatcher = Dispatcher(store, refresh=self.refresh, wake=self.worker.wake)
        self._subscribed = False
        self._stop: asyncio.Event | None = None
        self._worker_task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Project the subscriptions, join the consumer group, run the worker (idempotent)."""
        await self.refresh()
        if not self._subscribed:
            await consume_envelopes(self.bus, self.topic, group=self.group, handler=self.dispatcher)
            self._subscribed = True
        if self._worker_task is None:
            self._stop = asyncio.Event()
            self._worker_task = asyncio.create_task(
                self.worker.run(self._stop), name="webhooks:worker"
            )

    async def stop(self) -> None:
        """Stop the worker after its in-flight requests. The bus port has no unsubscribe: events
        that still arrive are queued (not sent) until a worker runs again."""
        if self._worker_task is None or self._stop is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker_task
        self._worker_task = None

    async def refresh(self) -> None:
        """Bring the subscriptions up to the store's head (one catch-up at a time per process)."""
        async with self._refresh_lock:
            await self._runner.catch_up()

    # ---- subscriptions ---------------------------------------------------------------------

    async def create(
        self, principal: Principal, namespace_id: str, command: CreateWebhook
    ) -> dict[str, Any]:
        """The new subscription with its ``secret`` (shown here only)."""
        principal.require(Permission.WRITE)
        webhook_id = _webhook_id(namespace_id, str(command.command_id))
        event = WebhookCreated(
            webhook_id=webhook_id,
            namespace_id=namespace_id,
            organization_id=principal.organization_id,
            url=command.url,
            event_types=command.event_types,
            secret=command.secret or generate_secret(),
            description=command.description,
        )
        [event_id] = event_ids_for(command.command_id, 1)
        await self.store.append(
            namespace_id,
            [to_new_event(event, namespace_id=namespace_id, event_id=event_id)],
            expected_version=None,
        )
        await self.refresh()
        async with self.store.transaction() as tx:
            row = await self._subscription(tx, principal, namespace_id, webhook_id)
        return {**webhook_record(row), "secret": row["secret"]}

    async def list(self, principal: Principal, namespace_id: str) -> list[dict[str, Any]]:
        principal.require(Permission.READ)
        await self.refresh()
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM whk_subscriptions WHERE namespace_id = $1 "
                "AND organization_id = $2 AND status = 'ACTIVE' ORDER BY created_at, webhook_id",
                namespace_id, principal.organization_id,
            )  # fmt: skip
        return [webhook_record(r) for r in rows]

    async def get(self, principal: Principal, namespace_id: str, webhook_id: str) -> dict[str, Any]:
        principal.require(Permission.READ)
        await self.refresh()
        async with self.store.transaction() as tx:
            return webhook_record(await self._subscription(tx, principal, namespace_id, webhook_id))

    async def delete(self, principal: Principal, namespace_id: str, webhook_id: str) -> None:
        """Remove the subscription; its pending deliveries become DEAD ("webhook deleted")."""
        principal.require(Permission.WRITE)
        await self.get(principal, namespace_id, webhook_id)
        event = WebhookDeleted(webhook_id=webhook_id, namespace_id=namespace_id)
        await self.store.append(
            namespace_id,
            [to_new_event(event, namespace_id=namespace_id)],
            expected_version=None,
        )
        await self.refresh()

    # ---- deliveries ------------------------------------------------------------------------

    async def deliveries(
        self,
        principal: Principal,
        namespace_id: str,
        webhook_id: str,
        *,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> builtins.list[dict[str, Any]]:
        """The webhook's delivery log, newest first, each with its attempt history."""
        principal.require(Permission.READ)
        await self.refresh()
        async with self.store.transaction() as tx:
            await self._subscription(tx, principal, namespace_id, webhook_id)
            sql = "SELECT * FROM whk_deliveries WHERE webhook_id = $1"
            args: list[Any] = [webhook_id]
            if status is not None:
                sql += " AND status = $2"
                args.append(status.value)
            sql += f" ORDER BY created_at DESC, delivery_id LIMIT ${len(args) + 1}"
            rows = await tx.fetch(sql, *args, limit)
            history = await _history(tx, [r["delivery_id"] for r in rows])
        return [delivery_record(r, history.get(r["delivery_id"], [])) for r in rows]

    async def replay(
        self, principal: Principal, namespace_id: str, delivery_id: str
    ) -> dict[str, Any]:
        """Queue the delivery again, due now, with its attempt count reset (history is kept)."""
        principal.require(Permission.WRITE)
        await self.refresh()
        now = time.time()
        async with self.store.transaction() as tx:
            rows = await tx.fetch(
                "SELECT d.delivery_id FROM whk_deliveries d JOIN whk_subscriptions s "
                "ON s.webhook_id = d.webhook_id WHERE d.delivery_id = $1 AND s.namespace_id = $2 "
                "AND s.organization_id = $3 AND s.status = 'ACTIVE'",
                delivery_id, namespace_id, principal.organization_id,
            )  # fmt: skip
            if not rows:
                raise NotFoundError(f"webhook delivery {delivery_id!r} not found")
            await tx.execute(
                "UPDATE whk_deliveries SET status = 'PENDING', attempts = 0, "
                "replays = replays + 1, next_attempt_at = $1, claim = NULL, last_error = NULL, "
                "last_status_code = NULL, delivered_at = NULL, updated_at = $1 "
                "WHERE delivery_id = $2",
                now, delivery_id,
            )  # fmt: skip
            [row] = await tx.fetch(
                "SELECT * FROM whk_deliveries WHERE delivery_id = $1", delivery_id
            )
            history = await _history(tx, [delivery_id])
        self.worker.wake()
        return delivery_record(row, history.get(delivery_id, []))

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    async def _subscription(
        tx: Transaction, principal: Principal, namespace_id: str, webhook_id: str
    ) -> Any:
        """The live subscription, or 404 for one of another namespace or organization."""
        rows = await tx.fetch(
            "SELECT * FROM whk_subscriptions WHERE webhook_id = $1 AND namespace_id = $2 "
            "AND organization_id = $3 AND status = 'ACTIVE'",
            webhook_id, namespace_id, principal.organization_id,
        )  # fmt: skip
        if not rows:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        return rows[0]


async def _history(tx: Transaction, delivery_ids: list[str]) -> dict[str, list[Any]]:
    """Attempt rows per delivery, in the order they were made."""
    if not delivery_ids:
        return {}
    marks = ", ".join(f"${n}" for n in range(1, len(delivery_ids) + 1))
    rows = await tx.fetch(
        f"SELECT * FROM whk_attempts WHERE delivery_id IN ({marks}) "
        "ORDER BY delivery_id, replay, attempt",
        *delivery_ids,
    )
    history: dict[str, list[Any]] = {}
    for row in rows:
        history.setdefault(row["delivery_id"], []).append(row)
    return history
