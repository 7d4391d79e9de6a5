"""The delivery worker: a durable retry loop over ``whk_deliveries``.

Everything the loop needs lives in the database — status, attempt count, next attempt time — so
a restarted worker (or one in another process) resumes where the last one stopped. A worker
*claims* due rows before sending: it pushes their ``next_attempt_at`` past the request timeout
and stamps them with a token, so two workers never send the same attempt at once, and a worker
that dies mid-request leaves rows that come due again when the claim lapses (at-least-once).
The result of an attempt is recorded only while the claim still holds: a replay in between wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from libs.errors import InfrastructureError, InvalidInputError
from libs.eventstore import EventStore
from services.catalog.webhooks.signing import signature_headers

__all__ = ["DeliveryWorker", "HttpClientFactory", "RetryPolicy", "default_http_client"]

log = logging.getLogger("offshoot.webhooks")

HttpClientFactory = Callable[[], httpx.AsyncClient]

_MAX_ERROR = 500
_READ_BACK = 300  # bytes of a failed response's body kept in the error


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: the delay after the n-th failed attempt is
    ``min(max_delay, base_delay * factor ** (n - 1))``, shortened by up to ``jitter`` of itself
    at random (so receivers that failed together are not retried in lockstep). After
    ``max_attempts`` attempts the delivery is dead."""

    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 8
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidInputError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise InvalidInputError("delays must be >= 0 and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise InvalidInputError("jitter must be between 0 and 1")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts."""
        capped = min(self.max_delay, self.base_delay * self.factor ** max(attempts - 1, 0))
        return capped * (1 - self.jitter * random.random())


def default_http_client() -> httpx.AsyncClient:
    """Redirects are not followed: a 3xx is a failed delivery, never a POST to another host."""
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": "Offshoot-Webhooks/1"})


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: float


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


class DeliveryWorker:
    """Sends due deliveries, up to ``concurrency`` at a time, until stopped (see module doc)."""

    def __init__(
        self,
        store: EventStore,
        *,
        policy: RetryPolicy,
        http_client_factory: HttpClientFactory = default_http_client,
        request_timeout: float = 10.0,
        poll_interval: float = 1.0,
        concurrency: int = 8,
    ) -> None:
        """``poll_interval`` bounds how late a row queued by another process is noticed (rows
        this process queues wake the worker at once)."""
        if concurrency < 1:
            raise InvalidInputError("concurrency must be at least 1")
        self._store = store
        self._policy = policy
        self._client_factory = http_client_factory
        self._timeout = request_timeout
        self._poll = poll_interval
        self._concurrency = concurrency
        self._claim_for = 2 * request_timeout + 5.0
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """New or replayed rows are due: look now instead of at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send due rows until ``stop`` is set; in-flight requests then finish (each is
        bounded by the request timeout) and their results are recorded. If the process dies
        instead, its in-flight rows stay claimed until the claim lapses, then are sent again."""
        in_flight: set[asyncio.Task[None]] = set()
        async with self._client_factory() as client:
            try:
                while not stop.is_set():
                    self._wakeup.clear()  # before looking: a wake-up from now on is not lost
                    free = self._concurrency - len(in_flight)
                    try:
                        claimed = await self._claim(free) if free > 0 else []
                    except InfrastructureError as error:  # the database is away: try later
                        log.warning("webhook worker cannot claim deliveries: %s", error)
                        await _sleep_unless(stop, self._poll)
                        continue
                    for row in claimed:
                        task = asyncio.create_task(self._attempt(client, row))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    if claimed and len(claimed) == free:
                        continue  # every slot is busy now; the next turn waits for one
                    await self._idle(stop, in_flight, full=free == 0)
            finally:
                if in_flight:
                    await asyncio.gather(*in_flight, return_exceptions=True)

    async def _idle(
        self, stop: asyncio.Event, in_flight: set[asyncio.Task[None]], *, full: bool
    ) -> None:
        """Wait for a wake-up, a stop, a finished request or the next due row (at most a poll)."""
        timeout = self._poll
        if not full:
            with contextlib.suppress(InfrastructureError):
                timeout = min(self._poll, await self._next_due_in())
        waiters: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(self._wakeup.wait()),
            asyncio.ensure_future(stop.wait()),
        }
        if in_flight:
            finished = asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
            waiters.add(asyncio.ensure_future(finished))
        try:
            await asyncio.wait(
                waiters, timeout=max(timeout, 0.001), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _next_due_in(self) -> float:
        async with self._store.transaction() as tx:
            due = await tx.fetchval(
                "SELECT MIN(next_attempt_at) FROM whk_deliveries WHERE status = 'PENDING'"
            )
        return self._poll if due is None else float(due) - time.time()

    async def _claim(self, limit: int) -> list[Mapping[str, Any]]:
        """Take up to ``limit`` due rows for this worker (with their subscription's url/secret)."""
        token = uuid.uuid4().hex
        now = time.time()
        async with self._store.transaction() as tx:
            due = await tx.fetch(
                "SELECT delivery_id FROM whk_deliveries WHERE status = 'PENDING' "
                "AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
                now, limit,
            )  # fmt: skip
            if not due:
                return []
            for row in due:
                # Re-checked in the UPDATE: a concurrent worker that claimed it first wins.
                await tx.execute(
                    "UPDATE whk_deliveries SET claim = $1, next_attempt_at = $2 "
                    "WHERE delivery_id = $3 AND status = 'PENDING' AND next_attempt_at <= $4",
                    token, now + self._claim_for, row["delivery_id"], now,
                )  # fmt: skip
            # A row queued while its subscription was being deleted (by another process).
            await tx.execute(
                "UPDATE whk_deliveries SET status = 'DEAD', claim = NULL, next_attempt_at = NULL, "
                "last_error = 'webhook deleted before delivery', updated_at = $1 "
                "WHERE claim = $2 AND webhook_id IN "
                "(SELECT webhook_id FROM whk_subscriptions WHERE status <> 'ACTIVE')",
                now, token,
            )  # fmt: skip
            return await tx.fetch(
                "SELECT d.delivery_id, d.event_id, d.body, d.attempts, d.replays, d.claim, "
                "s.url, s.secret FROM whk_deliveries d "
                "JOIN whk_subscriptions s ON s.webhook_id = d.webhook_id WHERE d.claim = $1",
                token,
            )

    async def _attempt(self, client: httpx.AsyncClient, row: Mapping[str, Any]) -> None:
        try:
            outcome = await self._send(client, row)
            await self._record(row, outcome)
        except Exception:  # a database error: the claim lapses and the row is tried again
            log.exception("webhook delivery %s: could not record the attempt", row["delivery_id"])

    async def _send(self, client: httpx.AsyncClient, row: Mapping[str, Any]) -> _Outcome:
        body = str(row["body"]).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Offshoot-Delivery-Id": row["delivery_id"],
            **signature_headers(row["secret"], body, event_id=row["event_id"]),
        }
        started = time.perf_counter()
        try:
            async with client.stream(
                "POST", row["url"], content=body, headers=headers, timeout=self._timeout
            ) as response:
                head = b""
                if not response.is_success:
                    async for chunk in response.aiter_bytes():
                        head += chunk
                        if len(head) >= _READ_BACK:
                            break
        except httpx.HTTPError as error:
            elapsed = (time.perf_counter() - started) * 1000
            reason = _short(
                f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            )
            return _Outcome(False, None, reason, elapsed)
        elapsed = (time.perf_counter() - started) * 1000
        if response.is_success:
            return _Outcome(True, response.status_code, None, elapsed)
        text = head[:_READ_BACK].decode("utf-8", "replace")
        return _Outcome(
            False,
            response.status_code,
            _short(f"HTTP {response.status_code}: {text}".strip()),
            elapsed,
        )

    async def _record(self, row: Mapping[str, Any], outcome: _Outcome) -> None:
        now = time.time()
        attempts = int(row["attempts"]) + 1
        if outcome.delivered:
            status, next_at = "DELIVERED", None
        elif attempts >= self._policy.max_attempts:
            status, next_at = "DEAD", None
        else:
            status, next_at = "PENDING", now + self._policy.delay(attempts)
        async with self._store.transaction() as tx:
            held = await tx.fetch(
                "SELECT 1 FROM whk_deliveries WHERE delivery_id = $1 AND claim = $2",
                row["delivery_id"], row["claim"],
            )  # fmt: skip
            if not held:
                return  # replayed or deleted meanwhile: this attempt no longer counts
            await tx.execute(
                "INSERT INTO whk_attempts VALUES ($1, $2, $3, $4, $5, $6, $7)",
                row["delivery_id"], row["replays"], attempts, now, outcome.status_code,
                outcome.error, outcome.duration_ms,
            )  # fmt: skip
            await tx.execute(
                "UPDATE whk_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, "
                "claim = NULL, last_error = $4, last_status_code = $5, updated_at = $6, "
                "delivered_at = $7 WHERE delivery_id = $8",
                status, attempts, next_at, outcome.error, outcome.status_code, now,
                now if outcome.delivered else None, row["delivery_id"],
            )  # fmt: skip
        if status == "DEAD":
            log.warning(
                "webhook delivery %s is dead after %d attempts: %s",
                row["delivery_id"], attempts, outcome.error,
            )  # fmt: skip
