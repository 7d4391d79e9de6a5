"""Commands published straight to ``offshoot.commands`` act like the HTTP calls; a bad key or a
bad body is rejected with an event that says why, and nothing changes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from contracts import topics
from contracts.envelope import Envelope
from libs.bus import publish_envelope
from services.catalog.commands import REJECTIONS_STREAM
from tests.catalog.conftest import Api


async def _send(
    api: Api, command_type: str, command: dict[str, Any], *, key: str, namespace: str | None = None
) -> uuid.UUID:
    command_id = uuid.uuid4()
    envelope = Envelope(
        event_id=command_id, type=command_type, stream_id="commands", version=1, namespace_id=namespace,
        data={"api_key": key, "command": command},
    )  # fmt: skip
    await publish_envelope(api.runtime.bus, topics.COMMANDS, envelope)
    return command_id


async def _eventually(check: Any, *, within: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _rejections(api: Api) -> list[dict[str, Any]]:
    return [e.data for e in await api.runtime.store.read_stream(REJECTIONS_STREAM)]


async def test_a_command_on_kafka_has_the_same_effect_as_the_http_call(api: Api) -> None:
    await _send(api, "namespace.create", {"namespace_name": "from-kafka"}, key=api.admin_key)

    async def created() -> bool:
        return (await api.call("GET", "/v1/namespaces/from-kafka")).status_code == 200

    await _eventually(created)


async def test_a_namespace_scoped_command_uses_the_envelope_namespace(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "prod"})

    await _send(
        api, "bucket.create", {"bucket_name": "papers"}, key=api.admin_key, namespace="prod"
    )

    async def bucket_exists() -> bool:
        return (await api.call("GET", "/v1/buckets/papers", namespace="prod")).status_code == 200

    await _eventually(bucket_exists)


async def test_a_bad_key_is_rejected_with_a_reason_and_changes_nothing(api: Api) -> None:
    command_id = await _send(
        api,
        "namespace.create",
        {"namespace_name": "intruded"},
        key="osk.key_00000000000000000000.x",
    )

    rejections = await _eventually(lambda: _rejections(api))

    assert rejections[0]["command_id"] == str(command_id)
    assert "invalid API key" in rejections[0]["reason"]
    assert (await api.call("GET", "/v1/namespaces/intruded")).status_code == 404


async def test_an_invalid_command_body_is_rejected_naming_the_field(api: Api) -> None:
    await _send(api, "namespace.create", {"namespace_name": "Bad Name"}, key=api.admin_key)

    rejections = await _eventually(lambda: _rejections(api))

    assert "namespace_name" in rejections[0]["reason"]


async def test_an_unknown_command_type_is_rejected(api: Api) -> None:
    await _send(api, "namespace.explode", {}, key=api.admin_key)

    rejections = await _eventually(lambda: _rejections(api))

    assert "unknown command type 'namespace.explode'" in rejections[0]["reason"]


async def test_a_redelivered_command_is_handled_once(api: Api) -> None:
    command_id = uuid.uuid4()
    envelope = Envelope(
        event_id=command_id, type="namespace.create", stream_id="commands", version=1,
        data={"api_key": api.admin_key, "command": {"namespace_name": "once"}},
    )  # fmt: skip
    await publish_envelope(api.runtime.bus, topics.COMMANDS, envelope)
    await publish_envelope(api.runtime.bus, topics.COMMANDS, envelope)

    async def created() -> bool:
        return (await api.call("GET", "/v1/namespaces/once")).status_code == 200

    await _eventually(created)
    await asyncio.sleep(0.3)
    assert await _rejections(api) == []
