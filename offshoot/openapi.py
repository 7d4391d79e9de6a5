"""Writes the HTTP API's OpenAPI document to ``contracts/openapi.json`` (``make contracts``).

The document comes from the running app's routes, so it cannot drift from the code; a test fails
when the committed file is stale. ``--check`` exits 1 instead of writing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from offshoot.runtime import Runtime

TARGET = Path(__file__).parent.parent / "contracts" / "openapi.json"


async def render() -> str:
    with tempfile.TemporaryDirectory() as scratch:
        runtime = await Runtime.open(data_dir=Path(scratch))
        try:
            document: dict[str, Any] = runtime.app.openapi()
        finally:
            await runtime.close()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    rendered = asyncio.run(render())
    if "--check" in argv:
        stale = not TARGET.exists() or TARGET.read_text() != rendered
        if stale:
            print("stale: contracts/openapi.json (run `make contracts`)")
        return 1 if stale else 0
    TARGET.write_text(rendered)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
