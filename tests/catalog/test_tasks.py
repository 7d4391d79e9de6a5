"""Tasks: other services report progress on the bus, and a finished task never changes again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from contracts import topics
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.tasks import TaskFinished, TaskProgressed, TaskStatus
from libs.bus import publish_envelope
from tests.catalog.conftest import Api


async def _report(api: Api, event: Event, version: int) -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(), type=event.type_name, stream_id="extractor-task", version=version,
        data=event.model_dump(mode="json"),
    )  # fmt: skip
    await publish_envelope(api.runtime.bus, topics.EVENTS, envelope)


async def _task_when(api: Api, task_id: str, check: Any) -> dict[str, Any]:
    for _ in range(400):
        task: dict[str, Any] = await api.ok("GET", f"/v1/tasks/{task_id}")
        if check(task):
            return task
        await asyncio.sleep(0.025)
    raise AssertionError(f"task {task_id} never reached the expected state")


@pytest.fixture
def runtime_options() -> dict[str, Any]:
    return {"fork_participants": ["alpha"]}  # a participant that never answers: the task stays open


async def _open_task(api: Api) -> str:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})
    task = await api.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})
    return str(task["task_id"])


async def test_progress_reported_by_another_service_shows_on_the_task(api: Api) -> None:
    task_id = await _open_task(api)

    await _report(
        api, TaskProgressed(task_id=task_id, status=TaskStatus.PROCESSING, done=40, total=100), 1
    )

    task = await _task_when(api, task_id, lambda t: t["progress"]["done"] == 40)
    assert (task["status"], task["progress"]) == ("PROCESSING", {"done": 40, "total": 100})


async def test_a_finished_task_ignores_late_progress(api: Api) -> None:
    task_id = await _open_task(api)

    await _report(
        api, TaskFinished(task_id=task_id, status=TaskStatus.COMPLETED, result={"documents": 3}), 1
    )
    await _task_when(api, task_id, lambda t: t["status"] == "COMPLETED")
    await _report(api, TaskProgressed(task_id=task_id, done=1, total=3), 2)
    await asyncio.sleep(0.3)

    task = await api.ok("GET", f"/v1/tasks/{task_id}")
    assert (task["status"], task["result"]) == ("COMPLETED", {"documents": 3})
