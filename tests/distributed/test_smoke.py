"""One role process starts on the distributed adapters, reports ready and stops on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.distributed.harness import cluster

pytestmark = pytest.mark.integration


async def test_a_role_process_is_ready_then_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    async with cluster(tmp_path, "smoke") as deployment:
        extractor = await deployment.start("extractor")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{extractor.url}/healthz")).json() == {"status": "alive"}
            ready = (await http.get(f"{extractor.url}/readyz")).json()
            # a non-gateway process serves health only
            assert (await http.get(f"{extractor.url}/v1/namespaces")).status_code == 404
        assert ready["status"] == "ready"
        assert await deployment.terminate("extractor") == 0
        assert "offshoot: stopped" in extractor.log_tail()
