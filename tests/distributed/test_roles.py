"""Role gating: a process consumes (joins the consumer group of) only the services whose role it
runs; the other services are dormant there: routes mounted, nothing consumed.

In-process on the embedded adapters: the groups a ``Runtime`` subscribes are read from the
in-memory bus, which is what a Kafka process would join.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.bus import LocalBus
from offshoot.runtime import Runtime

EVENT_GROUPS = {"catalog", "extractor", "retrieval", "taxonomy", "evaluation"}
ROUTES = {"taxonomy": "/v1/taxonomies", "evaluation": "/v1/evaluations/datasets"}


async def _groups(tmp_path: Path, roles: set[str] | None) -> tuple[set[str], set[str]]:
    runtime = await Runtime.open(data_dir=tmp_path, roles=roles)
    try:
        assert isinstance(runtime.bus, LocalBus)
        groups = {group for _, group in runtime.bus._groups}
        paths = set(runtime.app.openapi()["paths"])
        return groups, paths
    finally:
        await runtime.close()


@pytest.mark.parametrize("role", ["taxonomy", "evaluation"])
async def test_taxonomy_and_evaluation_consume_only_in_their_role(
    tmp_path: Path, role: str
) -> None:
    alone, _ = await _groups(tmp_path / "alone", {role})
    assert alone & EVENT_GROUPS == {role}

    gateway, paths = await _groups(tmp_path / "gateway", {"gateway"})
    assert not gateway & EVENT_GROUPS  # the gateway consumes nothing ...
    assert ROUTES[role] in paths  # ... but serves every service's routes


async def test_every_role_by_default(tmp_path: Path) -> None:
    groups, _ = await _groups(tmp_path, None)
    assert groups >= EVENT_GROUPS
