"""The scenario behind ``make demo``: the model-migration story, on the embedded default, driven
only through the SDK.

Production serves BEIR SciFact with a cheap static model behind the alias ``search``. A clone
gives staging the same data in milliseconds (vectors shared, not copied); staging re-embeds with a
transformer in the background while production keeps answering; three candidate retrievers are
evaluated against the baseline on the same ground truth, shadowed behind the alias and replayed
against simulated sessions; the alias is promoted to the winner and rolled back. Every number
printed comes from the API (``client.retrievers.evaluations`` and friends), and the HTML report
in ``out/`` is rendered from the same records.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn
from rich.table import Table

from contracts.tasks import TaskStatus
from libs.datasets import scifact_dir
from libs.errors import InvalidInputError, OffshootError
from offshoot.client import Client, Record
from services.evaluation.reports import benchmark_table, comparison_table

# piped output (CI logs, `tee`) gets room for the delta tables instead of rich's 80 columns
console = Console(width=None if sys.stdout.isatty() else 140)
STATIC = {"feature_extractor_name": "minilm-static", "version": "v1"}
MINILM = {"feature_extractor_name": "minilm", "version": "v1"}
BM25 = {"feature_extractor_name": "bm25", "version": "v1"}
SCHEMA = {
    "type": "object",
    "properties": {
        "_id": {"type": "string"},
        "title": {"type": "string"},
        "text": {"type": "string"},
    },
    "required": ["_id", "text"],
}
QUERY_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}},
    "required": ["query"],
}
K_VALUES = [1, 5, 10, 20, 100]
SCIFACT_DOCUMENTS = 5183


class DemoError(OffshootError):
    """A step of the story did not finish as it must (a task FAILED, say)."""


def scifact(count: int) -> Iterator[dict[str, Any]]:
    """SciFact abstracts as objects: BEIR's ``_id`` kept, ``text`` = title + " " + abstract."""
    with gzip.open(scifact_dir() / "corpus.jsonl.gz", "rt") as lines:
        for _, line in zip(range(count), lines, strict=False):
            row = json.loads(line)
            yield {
                "_id": row["_id"],
                "title": row["title"],
                "text": f"{row['title']} {row['text']}",
            }


def papers(client: Client, extractor: dict[str, str] = STATIC) -> tuple[Record, Record]:
    """The bucket of SciFact abstracts (``SCHEMA``, upserted by BEIR ``_id``) and a collection
    over it with ``extractor``, in ``client``'s namespace: (bucket, collection)."""
    bucket = client.buckets.create("papers", bucket_schema=SCHEMA, unique_key="_id")
    collection = client.collections.create(
        "abstracts",
        source={"type": "bucket", "bucket_id": bucket.bucket_id},
        feature_extractor=extractor,
    )
    return bucket, collection


def parse_model(model: str) -> dict[str, str]:
    """``minilm@v1`` → the extractor reference a collection takes."""
    name, _, version = model.partition("@")
    if not name or not version:
        raise InvalidInputError(
            f"--model must look like name@version (e.g. minilm@v1), got {model!r}"
        )
    return {"feature_extractor_name": name, "version": version}


def run_demo(
    data_dir: Path | None,
    documents: int = SCIFACT_DOCUMENTS,
    *,
    model: str = "minilm@v1",
    out: Path = Path("out"),
) -> None:
    candidate = parse_model(model)
    with tempfile.TemporaryDirectory(prefix="offshoot-demo-") as scratch:
        directory = data_dir or Path(scratch)
        story = Story(documents, candidate, out)
        with story.step("0. start the embedded runtime (SQLite, in-process bus, Qdrant Edge)"):
            client = Client.embedded(directory)
        try:
            story.run(client)
        finally:
            client.close()
        story.print_timings()


def _stage(name: str, searches: list[dict[str, Any]], **parameters: Any) -> dict[str, Any]:
    return {
        "stage_name": name,
        "stage_type": "filter",
        "config": {
            "stage_id": "feature_search",
            "parameters": {"searches": searches, "final_top_k": 100, **parameters},
        },
    }


def _search(feature_uri: str, weight: float = 1.0) -> dict[str, Any]:
    return {"feature_uri": feature_uri, "query": "{{INPUT.query}}", "top_k": 100, "weight": weight}


class Story:
    """The steps of the migration, each timed; ``run`` tells them in order."""

    def __init__(self, documents: int, candidate_model: dict[str, str], out: Path) -> None:
        self.documents = documents
        self.candidate_model = candidate_model
        self.out = out
        self.timings: list[tuple[str, float]] = []

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        console.rule(f"[bold]{title}")
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.timings.append((title, elapsed))
        console.print(f"[dim]step took {elapsed:.1f} s[/dim]")

    def print_timings(self) -> None:
        table = Table(title="time per step")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        for title, elapsed in self.timings:
            table.add_row(title, f"{elapsed:.1f}")
        table.add_row("[bold]total", f"[bold]{sum(e for _, e in self.timings):.1f}")
        console.print(table)

    def run(self, client: Client) -> None:
        rows = list(scifact(self.documents))
        with self.step("1. an organization, a key, and production on the cheap static model"):
            prod, static = self._production(client, rows)
        with self.step("2. a retriever and the alias `search` that production traffic uses"):
            baseline = prod.retrievers.create(
                "static-dense", collection_identifiers=[static.collection_id],
                stages=[_stage("dense", [_search(static.feature_uri)])],
                input_schema=QUERY_SCHEMA, description="production baseline",
            )  # fmt: skip
            prod.aliases.create("search", baseline.retriever_id)
            _show_answer(prod, "search", rows[0]["title"])
        with self.step("3. clone prod → staging: a forked event stream, nothing copied"):
            staging, mapping = self._clone(client)
        with self.step(
            f"4. staging re-embeds with {_uri_of(self.candidate_model)} in the background"
        ):
            dense, lexical = self._reembed(prod, staging, mapping[static.collection_id], rows)
        with self.step("5. candidate retrievers: transformer, hybrid with BM25, weighted old+new"):
            retrievers = self._candidates(
                staging, mapping[baseline.retriever_id], mapping[static.collection_id], dense,
                lexical,
            )  # fmt: skip
        with self.step("6. evaluate every retriever on the 300 SciFact test queries"):
            dataset = staging.datasets.import_beir(
                scifact_dir(), split="test", dataset_name="scifact-test", document_id_field="_id"
            )
            evaluations = self._evaluate(staging, retrievers, dataset.dataset_id)
        with self.step("7. shadow the transformer behind the alias: same inputs, no effect"):
            self._shadow(staging, retrievers["transformer"], dataset)
        with self.step("8. replay sessions simulated from the qrels against every pipeline"):
            benchmark = self._benchmark(staging, retrievers, dataset.dataset_id)
        with self.step("9. the delta table, then promote the winner and roll back"):
            self._promote(staging, retrievers, evaluations, rows[0]["title"])
        with self.step(f"10. the HTML report → {self.out}/"):
            self._report(staging, evaluations, benchmark)

    def _production(self, client: Client, rows: list[dict[str, Any]]) -> tuple[Client, Record]:
        key = client.keys.create("demo-operator", permissions=["read", "write"])
        console.print(f"API key {key.key_id} (shown once, stored hashed): {key.api_key[:12]}…")
        client.namespaces.create("prod", description="production")
        prod = client.with_namespace("prod")
        bucket, static = papers(prod)
        with _bar(f"ingesting into {static.feature_uri}", len(rows)) as advance:
            for start in range(0, len(rows), 500):
                prod.objects.create_batch(
                    bucket.bucket_id, [{"fields": row} for row in rows[start : start + 500]]
                )
            _wait_documents(prod, static.collection_id, len(rows), advance)
        console.print(f"prod: {len(rows)} SciFact abstracts as documents of {static.feature_uri}")
        return prod, static

    def _clone(self, client: Client) -> tuple[Client, dict[str, str]]:
        started = time.perf_counter()
        task = client.namespaces.clone("prod", {"namespace_name": "staging"})
        done = client.tasks.wait(task.task_id)
        elapsed = (time.perf_counter() - started) * 1000
        if done.status != TaskStatus.COMPLETED:
            raise DemoError(f"clone {done.status}: {done.get('error')}")
        mapping: dict[str, str] = done.result["mapping"]
        console.print(
            f"clone COMPLETED in {elapsed:.0f} ms (request → every service acknowledged): "
            f"{len(mapping)} resources mapped, {self.documents} documents visible, none copied"
        )
        return client.with_namespace("staging"), mapping

    def _reembed(
        self, prod: Client, staging: Client, inherited: str, rows: list[dict[str, Any]]
    ) -> tuple[Record, Record]:
        lexical = staging.collections.clone(
            inherited, {"collection_name": "abstracts-bm25", "feature_extractor": BM25}
        )
        lexical_task = staging.collections.trigger(lexical.collection_id)
        dense = staging.collections.clone(
            inherited,
            {"collection_name": "abstracts-dense", "feature_extractor": self.candidate_model},
        )
        trigger = staging.collections.trigger(dense.collection_id)
        _show_answer(prod, "search", rows[1]["title"], note="prod, while staging re-embeds")
        with _bar(f"re-embedding with {dense.feature_uri}", len(rows)) as advance:
            while not TaskStatus((state := staging.tasks.get(trigger.task_id)).status).finished:
                advance(state.progress["done"], state.progress["total"] or len(rows))
                time.sleep(0.25)
        for task in (trigger.task_id, lexical_task.task_id):
            finished = staging.tasks.wait(task)
            if finished.status != TaskStatus.COMPLETED:
                raise DemoError(f"trigger {finished.status}: {finished.get('error')}")
        console.print(
            f"trigger COMPLETED: {state.result}; prod served from its own vectors throughout"
        )
        return dense, lexical

    def _candidates(
        self, staging: Client, baseline: str, static: str, dense: Record, lexical: Record
    ) -> dict[str, str]:
        static_uri = staging.collections.get(static).feature_uri
        transformer = staging.retrievers.create(
            "transformer", collection_identifiers=[dense.collection_id],
            stages=[_stage("dense", [_search(dense.feature_uri)])], input_schema=QUERY_SCHEMA,
        )  # fmt: skip
        hybrid = staging.retrievers.create(
            "hybrid-bm25", collection_identifiers=[dense.collection_id, lexical.collection_id],
            stages=[_stage("hybrid", [_search(dense.feature_uri), _search(lexical.feature_uri)],
                           fusion="rrf")],
            input_schema=QUERY_SCHEMA,
        )  # fmt: skip
        weighted = staging.retrievers.create(
            "weighted-old-new", collection_identifiers=[static, dense.collection_id],
            stages=[_stage("blend", [_search(static_uri, 0.9), _search(dense.feature_uri, 0.1)],
                           fusion="weighted")],
            input_schema=QUERY_SCHEMA,
        )  # fmt: skip
        chosen = {
            "baseline": baseline,
            "transformer": transformer.retriever_id,
            "hybrid": hybrid.retriever_id,
            "weighted": weighted.retriever_id,
        }
        for role, retriever_id in chosen.items():
            console.print(
                f"{role:>12}: {retriever_id} ({staging.retrievers.get(retriever_id).retriever_name})"
            )
        return chosen

    def _evaluate(
        self, staging: Client, retrievers: dict[str, str], dataset_id: str
    ) -> dict[str, Record]:
        results: dict[str, Record] = {}
        for role, retriever_id in retrievers.items():
            started = time.perf_counter()
            run = staging.retrievers.evaluations.run(retriever_id, dataset_id, k_values=K_VALUES)
            task = staging.tasks.wait(run.task_id)
            if task.status != TaskStatus.COMPLETED:
                raise DemoError(f"evaluation of {role} {task.status}: {task.get('error')}")
            results[role] = staging.retrievers.evaluations.get(run.evaluation_id)
            ndcg = results[role].metrics_by_k["10"]["ndcg"]
            console.print(f"{role:>12}: NDCG@10 {ndcg:.4f} ({time.perf_counter() - started:.1f} s)")
        return results

    def _shadow(self, staging: Client, candidate: str, dataset: Record) -> None:
        staging.aliases.shadow("search", candidate)
        queries = staging.datasets.get(dataset.dataset_id).queries[:25]
        for query in queries:
            staging.aliases.execute("search", {"query": query["query_input"]})
        pair = _wait_shadow(staging, "search", candidate, len(queries))
        console.print(
            f"shadow {candidate} over {pair['comparisons']} live queries: "
            f"overlap@k {pair['mean_overlap_at_k']:.2f}, mean rank shift "
            f"{pair['mean_rank_shift'] or 0:.2f}, latency delta "
            f"{pair['mean_latency_delta_ms']:+.1f} ms; every response came from the primary"
        )
        staging.aliases.clear_shadow("search")

    def _benchmark(self, staging: Client, retrievers: dict[str, str], dataset_id: str) -> Record:
        staging.interactions.simulate_from_dataset(dataset_id, session_count=200, seed=7)
        benchmark = staging.retrievers.benchmarks.create(
            "migration", baseline_retriever_id=retrievers["baseline"],
            candidate_retriever_ids=[r for role, r in retrievers.items() if role != "baseline"],
            session_count=200,
        )  # fmt: skip
        task = staging.tasks.wait(
            staging.retrievers.benchmarks.execute(benchmark.benchmark_id).task_id
        )
        if task.status != TaskStatus.COMPLETED:
            raise DemoError(f"benchmark {task.status}: {task.get('error')}")
        result = Record(staging.retrievers.benchmarks.get(benchmark.benchmark_id))
        console.print(benchmark_table(result))
        return result

    def _promote(
        self,
        staging: Client,
        retrievers: dict[str, str],
        evaluations: dict[str, Record],
        query: str,
    ) -> None:
        console.print(comparison_table(list(evaluations.values()), retrievers["baseline"]))
        winner = max(evaluations, key=lambda role: evaluations[role].metrics_by_k["10"]["ndcg"])
        gain = (
            evaluations[winner].metrics_by_k["10"]["ndcg"]
            - evaluations["baseline"].metrics_by_k["10"]["ndcg"]
        )
        staging.aliases.move(
            "search", retrievers[winner], reason=f"{winner}: NDCG@10 {gain:+.4f} vs baseline"
        )
        _show_answer(staging, "search", query, note="after promotion")
        staging.aliases.rollback("search", reason="demo: roll back to show it is one move")
        _show_answer(staging, "search", query, note="after rollback")
        history = Table(title="alias `search` history (staging)")
        for column in ("when", "kind", "from", "to", "why"):
            history.add_column(column)
        for move in staging.aliases.history("search").results:
            history.add_row(
                str(move.get("moved_at", "")), move.get("kind", ""),
                str(move.get("from_retriever_id") or "—"), move.get("to_retriever_id", ""),
                move.get("reason", ""),
            )  # fmt: skip
        console.print(history)

    def _report(self, staging: Client, evaluations: dict[str, Record], benchmark: Record) -> None:
        path = staging.retrievers.evaluations.report(
            [e.evaluation_id for e in evaluations.values()],
            self.out / "migration-report.html",
            benchmark_id=benchmark.benchmark_id,
        )
        console.print(
            f"report: {path.resolve()} ({path.stat().st_size // 1024} KiB, self-contained)"
        )


def _uri_of(extractor: dict[str, str]) -> str:
    return f"offshoot://{extractor['feature_extractor_name']}@{extractor['version']}/…"


def _show_answer(client: Client, alias: str, query: str, *, note: str = "") -> None:
    answer = client.aliases.execute(alias, {"query": query}, limit=3)
    top = answer.results[0] if answer.results else {}
    title = top.get("payload", {}).get("title", "—")
    console.print(
        f"[cyan]{alias}[/cyan]{f' ({note})' if note else ''} served by {answer.served_by}: "
        f"{query[:50]!r} → {title[:70]!r}"
    )


def _wait_shadow(
    client: Client, alias: str, shadow: str, expected: int, timeout: float = 60
) -> dict[str, Any]:
    """The shadow runs after each response; wait until it has compared ``expected`` requests."""
    deadline = time.monotonic() + timeout
    while True:
        pairs = client.aliases.shadow_report(alias).results
        pair = next((p for p in pairs if p["shadow_retriever_id"] == shadow), None)
        if pair and pair["comparisons"] >= expected:
            return dict(pair)
        if time.monotonic() > deadline:
            raise DemoError(
                f"the shadow of {alias!r} compared {pair and pair['comparisons']} of {expected} requests"
            )
        time.sleep(0.2)


def _count(client: Client, collection: str) -> int:
    total, offset = 0, 0
    while True:
        page = client.documents.list(collection, limit=1000, offset=offset)
        total += len(page.results)
        if not page.has_more:
            return total
        offset += 1000


@contextmanager
def _bar(description: str, total: int) -> Iterator[Any]:
    columns = ("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        shown = progress.add_task(description, total=total)

        def advance(done: int, of: int | None = None) -> None:
            progress.update(shown, completed=done, total=of or total)

        yield advance
        progress.update(shown, completed=progress.tasks[0].total or total)


def _wait_documents(
    client: Client, collection: str, expected: int, advance: Any, timeout: float = 900
) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _count(client, collection)) < expected:
        advance(seen)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{collection} has {seen} of {expected} documents after {timeout} s")
        time.sleep(0.5)
