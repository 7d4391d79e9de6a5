"""The shadow runner without a runtime: what it records, and that it never queues or raises."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.retrieval import ShadowCompared
from services.retrieval.shadow import ShadowRunner

ALIAS = {"alias_id": "ali_1", "alias_name": "production"}
PRIMARY = {
    "retriever_id": "ret_blue",
    "duration_ms": 2.0,
    "results": [{"document_id": "a", "root_object_id": "obj_a"}, {"document_id": "b"}],
}


class Recorder:
    def __init__(self) -> None:
        self.events: list[ShadowCompared] = []
        self.done = asyncio.Event()

    async def record(self, _: str, compared: ShadowCompared) -> None:
        self.events.append(compared)
        self.done.set()


async def test_a_shadow_reading_another_collection_is_matched_by_source_object() -> None:
    recorder = Recorder()

    async def execute(*_: Any) -> dict[str, Any]:
        results = [{"document_id": "other-b"}, {"document_id": "x", "root_object_id": "obj_a"}]
        return {"duration_ms": 5.0, "results": results}

    ShadowRunner(execute, recorder.record).schedule("ns", ALIAS, "ret_green", {}, None, PRIMARY)
    await asyncio.wait_for(recorder.done.wait(), 5)

    compared = recorder.events[0]
    assert (compared.k, compared.overlap_at_k, compared.mean_rank_shift) == (2, 0.5, 1.0)
    assert compared.latency_delta_ms == 3.0
    assert compared.error is None


async def test_a_failing_shadow_is_recorded_not_raised() -> None:
    recorder = Recorder()

    async def execute(*_: Any) -> dict[str, Any]:
        raise RuntimeError("index offline")

    ShadowRunner(execute, recorder.record).schedule("ns", ALIAS, "ret_green", {}, None, PRIMARY)
    await asyncio.wait_for(recorder.done.wait(), 5)

    assert recorder.events[0].error == "RuntimeError: index offline"


async def test_shadows_beyond_the_pending_limit_are_skipped_and_stop_drops_them() -> None:
    recorder = Recorder()
    started = 0

    async def execute(*_: Any) -> dict[str, Any]:
        nonlocal started
        started += 1
        await asyncio.sleep(60)
        raise AssertionError("never finishes")

    runner = ShadowRunner(execute, recorder.record, max_pending=2)
    for _ in range(5):
        runner.schedule("ns", ALIAS, "ret_green", {}, None, PRIMARY)
    await asyncio.sleep(0.05)
    await runner.stop()

    assert started == 2
    assert recorder.events == []
