"""The scenario behind ``make demo``: the embedded default, driven only through the SDK.

It tells the first half of the migration story on BEIR SciFact: production ingests abstracts
with the cheap static model, a clone gives staging the same data in milliseconds (vectors are
shared, not copied), staging swaps in MiniLM and re-embeds in the background while production
keeps serving, and neither side ever sees the other's writes. Evaluation, retrievers and the
alias promotion come with the retrieval and evaluation services.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn
from rich.table import Table

from contracts.tasks import TaskStatus
from libs.datasets import scifact_dir
from offshoot.client import Client

console = Console()
STATIC = {"feature_extractor_name": "minilm-static", "version": "v1"}
MINILM = {"feature_extractor_name": "minilm", "version": "v1"}
SCHEMA = {
    "type": "object",
    "properties": {
        "_id": {"type": "string"},
        "title": {"type": "string"},
        "text": {"type": "string"},
    },
    "required": ["_id", "text"],
}


def scifact(count: int) -> Iterator[dict[str, Any]]:
    with gzip.open(scifact_dir() / "corpus.jsonl.gz", "rt") as lines:
        for _, line in zip(range(count), lines, strict=False):
            row = json.loads(line)
            yield {
                "_id": row["_id"],
                "title": row["title"],
                "text": f"{row['title']} {row['text']}",
            }


def run_demo(data_dir: Path | None, documents: int = 300) -> None:
    with tempfile.TemporaryDirectory(prefix="offshoot-demo-") as scratch:
        directory = data_dir or Path(scratch)
        started = time.perf_counter()
        with Client.embedded(directory) as client:
            console.print(
                f"embedded runtime up in {time.perf_counter() - started:.2f} s ({directory})"
            )
            _scenario(client, documents)


def _step(title: str) -> float:
    console.rule(f"[bold]{title}")
    return time.perf_counter()


def _done(started: float, what: str) -> None:
    console.print(f"[green]✓[/green] {what} [dim]({time.perf_counter() - started:.2f} s)[/dim]")


def _count(client: Client, collection: str) -> int:
    total, offset = 0, 0
    while True:
        page = client.documents.list(collection, limit=1000, offset=offset)
        total += len(page.results)
        if not page.has_more:
            return total
        offset += 1000


def _wait_documents(client: Client, collection: str, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _count(client, collection) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{collection} has fewer than {expected} documents after {timeout} s"
            )
        time.sleep(0.2)


def _scenario(client: Client, documents: int) -> None:
    started = _step(
        "1. production: a bucket of SciFact abstracts, embedded with the cheap static model"
    )
    client.namespaces.create("prod", description="production")
    prod = client.with_namespace("prod")
    bucket = prod.buckets.create("papers", bucket_schema=SCHEMA, unique_key="_id")
    static = prod.collections.create(
        "abstracts",
        source={"type": "bucket", "bucket_id": bucket.bucket_id},
        feature_extractor=STATIC,
    )
    rows = list(scifact(documents))
    for start in range(0, len(rows), 500):
        prod.objects.create_batch(
            bucket.bucket_id, [{"fields": row} for row in rows[start : start + 500]]
        )
    _wait_documents(prod, static.collection_id, len(rows))
    _done(started, f"{len(rows)} abstracts → {static.feature_uri} documents in prod")

    started = _step("2. clone prod into staging: a forked event stream, vectors shared")
    task = client.namespaces.clone("prod", {"namespace_name": "staging"})
    done = client.tasks.wait(task.task_id)
    mapping = done.result["mapping"]
    staging = client.with_namespace("staging")
    inherited = mapping[static.collection_id]
    _done(
        started,
        f"clone {done.status}: {len(mapping)} ids mapped, {_count(staging, inherited)} documents visible in staging, none copied",
    )

    started = _step("3. staging swaps the model: clone the collection with MiniLM and re-embed")
    candidate = staging.collections.clone(
        inherited, {"collection_name": "abstracts-minilm", "feature_extractor": MINILM}
    )
    trigger = staging.collections.trigger(candidate.collection_id)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        shown = bar.add_task(f"re-embedding with {candidate.feature_uri}", total=len(rows))
        while not TaskStatus((state := client.tasks.get(trigger.task_id)).status).finished:
            bar.update(
                shown, completed=state.progress["done"], total=state.progress["total"] or len(rows)
            )
            time.sleep(0.25)
        bar.update(shown, completed=len(rows))
    prod_meanwhile = _count(prod, static.collection_id)
    _done(
        started,
        f"trigger {state.status}: {state.result}; prod kept serving {prod_meanwhile} documents meanwhile",
    )

    started = _step("4. diverge: writes on each side never show on the other")
    staging.objects.create(
        mapping[bucket.bucket_id], {"_id": "staging-only", "text": "An abstract only staging has."}
    )
    prod.objects.create(
        bucket.bucket_id, {"_id": "prod-only", "text": "An abstract only production has."}
    )
    table = Table(title="documents per collection")
    for column in ("namespace", "collection", "feature URI", "documents"):
        table.add_column(column)
    _wait_documents(prod, static.collection_id, len(rows) + 1)
    _wait_documents(staging, candidate.collection_id, len(rows) + 1)
    for name, scoped in (("prod", prod), ("staging", staging)):
        for collection in scoped.collections.list():
            table.add_row(
                name,
                collection.collection_name,
                collection.feature_uri,
                str(_count(scoped, collection.collection_id)),
            )
    console.print(table)
    _done(started, "each side has its own new abstract only")

    started = _step("5. time travel: prod as of the moment it was cloned")
    forked_at = client.namespaces.get("staging").forked_at_position
    then = client.namespaces.get("prod", as_of=forked_at)
    _done(started, f"prod at position {forked_at}: {then.namespace_name!r}, {then.description!r}")
