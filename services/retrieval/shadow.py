"""Shadow traffic: run another retriever on a request's inputs after the primary answered, and
record how its ranking compares (``alias.shadow_compared``).

Kept apart from the service so the guarantees are visible in one place: a shadow is scheduled
only after the response exists, at most ``max_pending`` run at once per process (beyond that
they are skipped, never queued), a failing shadow is recorded as a finding rather than raised,
and stopping drops the ones in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from contracts.retrieval import ShadowCompared
from services.retrieval import variants

log = logging.getLogger("offshoot.retrieval.shadow")

MAX_PENDING_SHADOWS = 64
# (namespace, retriever, inputs, limit) -> the service's presented result
Execute = Callable[[str, str, dict[str, JsonValue], int | None], Awaitable[dict[str, Any]]]
Record = Callable[[str, ShadowCompared], Awaitable[None]]


def identity(document: dict[str, Any]) -> str:
    """What makes two results the same item across collections: a shadow usually reads another
    collection (another model) whose documents have their own ids but the same source object."""
    return str(document.get("root_object_id") or document["document_id"])


class ShadowRunner:
    def __init__(
        self, execute: Execute, record: Record, *, max_pending: int = MAX_PENDING_SHADOWS
    ) -> None:
        self._execute = execute
        self._record = record
        self._max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()

    def schedule(
        self, namespace_id: str, alias: dict[str, Any], shadow: str,
        inputs: dict[str, JsonValue], limit: int | None, primary: dict[str, Any],
    ) -> None:  # fmt: skip
        """Compare ``shadow`` with the ``primary`` result the caller already has, later."""
        if len(self._pending) >= self._max_pending:
            log.warning(
                "alias %s: shadow skipped, %d pending", alias["alias_name"], self._max_pending
            )
            return
        task = asyncio.create_task(self._run(namespace_id, alias, shadow, inputs, limit, primary))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self) -> None:
        for task in list(self._pending):  # comparisons in flight are dropped, not awaited
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def _run(
        self, namespace_id: str, alias: dict[str, Any], shadow: str,
        inputs: dict[str, JsonValue], limit: int | None, primary: dict[str, Any],
    ) -> None:  # fmt: skip
        error: str | None = None
        shadow_ms = 0.0
        shadow_ids: list[str] = []
        try:
            answer = await self._execute(namespace_id, shadow, inputs, limit)
            shadow_ms = float(answer["duration_ms"])
            shadow_ids = [identity(d) for d in answer["results"]]
        except Exception as failure:  # a broken shadow is a finding, not an outage
            error = f"{type(failure).__name__}: {failure}"
        comparison = variants.compare([identity(d) for d in primary["results"]], shadow_ids)
        primary_ms = float(primary["duration_ms"])
        compared = ShadowCompared(
            namespace_id=namespace_id, alias_id=alias["alias_id"],
            alias_name=alias["alias_name"], primary_retriever_id=primary["retriever_id"],
            shadow_retriever_id=shadow, k=comparison.k,
            overlap_at_k=0.0 if error else comparison.overlap_at_k,
            mean_rank_shift=None if error else comparison.mean_rank_shift,
            primary_ms=primary_ms, shadow_ms=shadow_ms,
            latency_delta_ms=0.0 if error else shadow_ms - primary_ms,
            error=error, compared_at=datetime.now(UTC).isoformat(),
        )  # fmt: skip
        try:
            await self._record(namespace_id, compared)
        except Exception:
            log.exception("alias %s: recording a shadow comparison failed", alias["alias_name"])


__all__ = ["MAX_PENDING_SHADOWS", "ShadowRunner", "identity"]
