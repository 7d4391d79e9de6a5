"""Alias canaries and shadows through HTTP, on both stacks."""

from __future__ import annotations

import asyncio
from typing import Any

from services.retrieval.variants import in_canary
from tests.catalog.conftest import Api
from tests.retrieval.conftest import corpus, mmr_stage, retriever, search_stage


async def _alias_over_two_retrievers(api: Api) -> tuple[str, list[dict[str, Any]], str, str]:
    """(namespace, rows, blue id, green id) with alias ``production`` serving blue; green keeps
    5 of blue's top 10 (mmr)."""
    ns, collection, rows = await corpus(api, 20)
    blue = await retriever(api, ns, collection, name="blue")
    green = await retriever(
        api, ns, collection, name="green", stages=[search_stage(), mmr_stage(limit=5)]
    )
    await api.ok(
        "POST", "/v1/aliases", namespace=ns,
        json={"alias_name": "production", "retriever_id": blue["retriever_id"]},
    )  # fmt: skip
    return ns, rows, blue["retriever_id"], green["retriever_id"]


async def _execute(api: Api, ns: str, query: str, **extra: Any) -> dict[str, Any]:
    body = {"inputs": {"query": query}, **extra}
    result: dict[str, Any] = await api.ok(
        "POST", "/v1/aliases/production/execute", namespace=ns, json=body
    )
    return result


async def test_a_canary_serves_the_hashed_share_of_users_and_each_user_keeps_its_variant(
    api: Api,
) -> None:
    ns, rows, blue, green = await _alias_over_two_retrievers(api)
    alias = await api.ok(
        "POST", "/v1/aliases/production/canary", namespace=ns,
        json={"retriever_id": green, "percent": 30, "reason": "try diversity"},
    )  # fmt: skip
    users = [f"user-{i}" for i in range(12)]

    first = [await _execute(api, ns, rows[0]["title"], user_id=u) for u in users]
    again = [await _execute(api, ns, rows[0]["title"], user_id=u) for u in users]

    assert alias["canary"] == {"retriever_id": green, "percent": 30}
    expected = [green if in_canary(alias["alias_id"], u, 30) else blue for u in users]
    assert [r["served_by"] for r in first] == expected
    assert [r["served_by"] for r in again] == expected
    assert {r["variant"] for r in first if r["served_by"] == green} <= {"canary"}
    assert {r["variant"] for r in first if r["served_by"] == blue} <= {"primary"}
    by_session = await _execute(api, ns, rows[0]["title"], session_id=users[0])
    assert by_session["served_by"] == expected[0]


async def test_clearing_and_promoting_a_canary_are_recorded_in_the_history(api: Api) -> None:
    ns, rows, blue, green = await _alias_over_two_retrievers(api)
    path = "/v1/aliases/production"
    await api.ok("POST", f"{path}/canary", namespace=ns,
                 json={"retriever_id": green, "percent": 50})  # fmt: skip
    cleared = await api.ok("DELETE", f"{path}/canary", namespace=ns,
                           json={"reason": "too slow"})  # fmt: skip
    served = {(await _execute(api, ns, rows[0]["title"], user_id=f"u{i}"))["served_by"]
              for i in range(8)}  # fmt: skip
    await api.ok("POST", f"{path}/canary", namespace=ns,
                 json={"retriever_id": green, "percent": 10})  # fmt: skip
    promoted = await api.ok("POST", f"{path}/move", namespace=ns,
                            json={"retriever_id": green, "reason": "canary won"})  # fmt: skip
    history = (await api.ok("GET", f"{path}/history", namespace=ns))["results"]

    assert cleared["canary"] is None
    assert served == {blue}
    assert promoted["retriever_id"] == green
    assert promoted["canary"] is None
    assert [(m["kind"], m["from_retriever_id"], m["to_retriever_id"]) for m in history] == [
        ("create", None, blue),
        ("canary", None, green),
        ("canary_cleared", green, None),
        ("canary", None, green),
        ("move", blue, green),
        ("canary_cleared", green, None),
    ]
    assert history[1]["percent"] == 50
    assert history[2]["reason"] == "too slow"
    assert all(m["moved_by"] and m["moved_at"] for m in history)


async def test_a_shadow_never_changes_the_response_and_records_its_comparison(
    api: Api,
) -> None:
    ns, rows, blue, green = await _alias_over_two_retrievers(api)
    path = "/v1/aliases/production"
    before = await _execute(api, ns, rows[1]["title"])

    shadowed = await api.ok("POST", f"{path}/shadow", namespace=ns,
                            json={"retriever_id": green})  # fmt: skip
    during = await _execute(api, ns, rows[1]["title"])
    report = await _wait_comparisons(api, ns, 1)

    assert shadowed["shadow"] == {"retriever_id": green}
    assert during["served_by"] == blue
    assert _ranking(during) == _ranking(before)
    summary = report["results"][0]
    assert (summary["primary_retriever_id"], summary["shadow_retriever_id"]) == (blue, green)
    assert summary["comparisons"] == 1
    assert summary["failures"] == 0
    # green is mmr(limit 5) over blue's own top 10: 5 of the 10 are shared
    assert summary["mean_overlap_at_k"] == 0.5
    assert summary["mean_rank_shift"] is not None
    assert summary["mean_latency_delta_ms"] is not None
    assert report["recent"][0]["k"] == 10

    await api.ok("DELETE", f"{path}/shadow", namespace=ns)
    await _execute(api, ns, rows[2]["title"])
    await asyncio.sleep(0.3)
    after = await api.ok("GET", f"{path}/shadow", namespace=ns)
    assert after["shadow"] is None
    assert after["results"][0]["comparisons"] == 1


def _ranking(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(d["document_id"], d["score"]) for d in result["results"]]


async def _wait_comparisons(api: Api, ns: str, count: int) -> dict[str, Any]:
    for _ in range(250):
        report: dict[str, Any] = await api.ok("GET", "/v1/aliases/production/shadow", namespace=ns)
        if report["results"] and report["results"][0]["comparisons"] >= count:
            return report
        await asyncio.sleep(0.02)
    raise AssertionError(f"no shadow comparison recorded: {report}")


async def test_variant_mistakes_are_refused(api: Api) -> None:
    ns, _, blue, green = await _alias_over_two_retrievers(api)
    path = "/v1/aliases/production"
    await api.ok("POST", f"{path}/shadow", namespace=ns, json={"retriever_id": green})

    too_much = await api.call("POST", f"{path}/canary", namespace=ns,
                              json={"retriever_id": green, "percent": 150})  # fmt: skip
    itself = await api.call("POST", f"{path}/canary", namespace=ns,
                            json={"retriever_id": blue, "percent": 10})  # fmt: skip
    nothing = await api.call("DELETE", f"{path}/canary", namespace=ns)
    in_use = await api.call("DELETE", f"/v1/retrievers/{green}", namespace=ns)
    unknown = await api.call("POST", f"{path}/shadow", namespace=ns,
                             json={"retriever_id": "ret_nowhere"})  # fmt: skip

    assert too_much.status_code == 422
    assert "percent" in too_much.text
    assert itself.status_code == 422
    assert "retriever_id" in itself.json()["error"]
    assert nothing.status_code == 404
    assert in_use.status_code == 409
    assert "production" in in_use.json()["error"]
    assert unknown.status_code == 404
