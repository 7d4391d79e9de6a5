"""A namespace clone waits for every participating service to fork its own state: the clone is
invisible until all have acknowledged, and a failure leaves nothing half-made behind."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from contracts import topics
from contracts.envelope import Envelope
from contracts.namespaces import NamespaceForkAcknowledged
from libs.bus import publish_envelope
from tests.catalog.conftest import Api


@pytest.fixture
def runtime_options() -> dict[str, Any]:
    return {"fork_participants": ["alpha", "beta"]}


async def _acknowledge(
    api: Api,
    task: dict[str, Any],
    service: str,
    *,
    error: str | None = None,
    mapping: dict[str, str] | None = None,
) -> None:
    ack = NamespaceForkAcknowledged(
        namespace_id=task["namespace_id"],
        service=service,
        task_id=task["task_id"],
        mapping=mapping or {},
        error=error,
    )
    envelope = Envelope(
        event_id=uuid.uuid4(), type=ack.type_name, stream_id=f"{service}-acks", version=1,
        namespace_id=task["namespace_id"], data=ack.model_dump(mode="json"),
    )  # fmt: skip
    await publish_envelope(api.runtime.bus, topics.EVENTS, envelope)


async def _status(api: Api, task_id: str, wanted: str) -> dict[str, Any]:
    for _ in range(400):
        task: dict[str, Any] = await api.ok("GET", f"/v1/tasks/{task_id}")
        if task["status"] == wanted:
            return task
        await asyncio.sleep(0.025)
    raise AssertionError(f"task {task_id} never became {wanted}")


async def test_the_clone_completes_when_every_service_has_acknowledged(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})
    task = await api.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})

    await _acknowledge(api, task, "alpha", mapping={"ret_a": "ret_b"})
    await asyncio.sleep(0.3)
    halfway = await api.ok("GET", f"/v1/tasks/{task['task_id']}")
    hidden = await api.call("GET", "/v1/namespaces/staging")
    await _acknowledge(api, task, "beta")
    done = await _status(api, task["task_id"], "COMPLETED")

    assert halfway["status"] == "PENDING" and hidden.status_code == 404
    assert done["result"]["mapping"]["ret_a"] == "ret_b"
    assert (await api.ok("GET", "/v1/namespaces/staging"))["status"] == "ACTIVE"


async def test_a_failed_participant_fails_the_clone_and_hides_it(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})
    task = await api.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})

    await _acknowledge(api, task, "alpha", error="vector store unavailable")
    failed = await _status(api, task["task_id"], "FAILED")

    assert failed["error"] == "alpha: vector store unavailable"
    assert (await api.call("GET", "/v1/namespaces/staging")).status_code == 404
    assert [n["namespace_name"] for n in (await api.ok("GET", "/v1/namespaces"))["results"]] == [
        "prod"
    ]
    assert (await api.ok("POST", "/v1/namespaces", json={"namespace_name": "staging"}))[
        "status"
    ] == "ACTIVE"


async def test_a_duplicate_acknowledgement_changes_nothing(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})
    task = await api.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})

    await _acknowledge(api, task, "alpha")
    await _acknowledge(api, task, "alpha")
    await asyncio.sleep(0.3)

    assert (await api.ok("GET", f"/v1/tasks/{task['task_id']}"))["status"] == "PENDING"


async def test_an_unfinished_task_can_be_canceled_once(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})
    task = await api.ok("POST", "/v1/namespaces/prod/clone", json={"namespace_name": "staging"})

    canceled = await api.ok("POST", f"/v1/tasks/{task['task_id']}/cancel")
    again = await api.call("POST", f"/v1/tasks/{task['task_id']}/cancel")

    await _acknowledge(api, task, "alpha")
    await _acknowledge(api, task, "beta")
    await asyncio.sleep(0.3)

    assert canceled["status"] == "CANCELED"
    assert again.status_code == 409
    assert (await api.ok("GET", f"/v1/tasks/{task['task_id']}"))["status"] == "CANCELED"
    assert (await api.call("GET", "/v1/namespaces/staging")).status_code == 404
