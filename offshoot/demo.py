"""The scenario behind ``make demo``: the embedded default, driven only through the SDK.

Today it tells the branching half of the story: a production namespace, an O(1) clone into
staging, writes on each side that the other never sees, and time travel with ``as_of``. Later
issues extend it into the full model-migration story (ingest, re-embed, evaluate, promote).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from offshoot.client import Client, Record

console = Console()


def _table(title: str, namespaces: list[Record]) -> Table:
    table = Table(title=title)
    for column in ("name", "id", "description", "parent", "forked at"):
        table.add_column(column)
    for ns in namespaces:
        table.add_row(
            ns.namespace_name,
            ns.namespace_id,
            ns.description,
            ns.parent_namespace_id or "-",
            "-" if ns.forked_at_position is None else str(ns.forked_at_position),
        )
    return table


def run_demo(data_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="offshoot-demo-") as scratch:
        directory = data_dir or Path(scratch)
        started = time.perf_counter()
        with Client.embedded(directory) as client:
            console.print(
                f"embedded runtime up in {time.perf_counter() - started:.2f} s ({directory})"
            )
            _scenario(client)


def _scenario(client: Client) -> None:
    console.rule("[bold]1. production")
    prod = client.namespaces.create("prod", description="production: cheap model")
    for revision in range(1, 51):
        client.namespaces.update("prod", description=f"production: revision {revision}")
    console.print(f"created {prod.namespace_id} and wrote 50 revisions")

    console.rule("[bold]2. clone prod into staging (a forked event stream: nothing is copied)")
    started = time.perf_counter()
    task = client.namespaces.clone("prod", {"namespace_name": "staging"})
    done = client.tasks.wait(task.task_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    console.print(
        f"clone task {done.status} in {elapsed_ms:.1f} ms; mapping {done.result['mapping']}"
    )

    console.rule("[bold]3. diverge: each side writes; neither sees the other")
    client.namespaces.update("staging", description="staging: trying a new model")
    client.namespaces.update("prod", description="production: hotfix")
    console.print(_table("namespaces now", client.namespaces.list()))

    console.rule("[bold]4. time travel: prod as of the moment it was cloned")
    staging = client.namespaces.get("staging")
    then = client.namespaces.get("prod", as_of=staging.forked_at_position)
    console.print(f"prod at position {staging.forked_at_position}: {then.description!r}")
