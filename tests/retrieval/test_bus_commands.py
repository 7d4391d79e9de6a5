"""Retriever and alias commands on ``offshoot.commands`` act like the HTTP calls, on both stacks;
a command missing its target is rejected with a reason."""

from __future__ import annotations

from typing import Any

from tests.catalog.conftest import Api
from tests.catalog.test_bus_commands import _eventually, _rejections, _send
from tests.retrieval.conftest import QUERY_SCHEMA, corpus, mmr_stage, search_stage


async def test_retrievers_and_alias_moves_arrive_over_the_bus(api: Api) -> None:
    ns, collection, _ = await corpus(api, 5)
    body = {"collection_identifiers": [collection], "input_schema": QUERY_SCHEMA}
    await _send(api, "retriever.create", {**body, "retriever_name": "blue",
                "stages": [search_stage()]}, key=api.admin_key, namespace=ns)  # fmt: skip
    await _send(api, "retriever.create", {**body, "retriever_name": "green",
                "stages": [search_stage(), mmr_stage(limit=2)]}, key=api.admin_key, namespace="papers")  # fmt: skip

    async def both() -> list[dict[str, Any]]:
        listed = (await api.ok("GET", "/v1/retrievers", namespace=ns))["results"]
        return listed if len(listed) == 2 else []

    blue, green = sorted(await _eventually(both), key=lambda r: r["retriever_name"])
    await _send(api, "alias.create", {"alias_name": "production",
                "retriever_id": "blue"}, key=api.admin_key, namespace=ns)  # fmt: skip
    await _eventually(lambda: _alias(api, ns))
    await _send(api, "alias.canary", {"alias_name": "production", "retriever_id": "green",
                "percent": 20}, key=api.admin_key, namespace=ns)  # fmt: skip
    await _send(api, "alias.move", {"alias_name": "production", "retriever_id": "green",
                "reason": "from kafka"}, key=api.admin_key, namespace=ns)  # fmt: skip

    async def moved() -> dict[str, Any] | None:
        alias = await _alias(api, ns)
        return alias if alias and alias["retriever_id"] == green["retriever_id"] else None

    alias = await _eventually(moved)
    history = (await api.ok("GET", "/v1/aliases/production/history", namespace=ns))["results"]
    assert alias["previous_retriever_id"] == blue["retriever_id"]
    assert alias["canary"] is None  # the canary was promoted
    assert [m["kind"] for m in history] == ["create", "canary", "move", "canary_cleared"]
    assert history[2]["reason"] == "from kafka"


async def _alias(api: Api, ns: str) -> dict[str, Any] | None:
    response = await api.call("GET", "/v1/aliases/production", namespace=ns)
    return response.json() if response.status_code == 200 else None


async def test_an_alias_command_without_its_alias_is_rejected(api: Api) -> None:
    await api.ok("POST", "/v1/namespaces", json={"namespace_name": "papers"})

    command_id = await _send(api, "alias.move", {"retriever_id": "anything"},
                             key=api.admin_key, namespace="papers")  # fmt: skip

    rejections = await _eventually(lambda: _rejections(api))
    assert rejections[0]["command_id"] == str(command_id)
    assert "alias_name" in rejections[0]["reason"]


async def test_a_url_and_a_body_naming_different_aliases_is_422(api: Api) -> None:
    ns, collection, _ = await corpus(api, 3)
    created = await api.ok("POST", "/v1/retrievers", namespace=ns, json={
        "retriever_name": "r", "collection_identifiers": [collection], "stages": [search_stage()],
        "input_schema": QUERY_SCHEMA})  # fmt: skip
    await api.ok("POST", "/v1/aliases", namespace=ns,
                 json={"alias_name": "production", "retriever_id": created["retriever_id"]})  # fmt: skip

    response = await api.call("POST", "/v1/aliases/production/move", namespace=ns,
                              json={"alias_name": "staging", "retriever_id": "r"})  # fmt: skip

    assert response.status_code == 422
    assert "alias_name" in response.json()["error"]
