"""The SDK groups end to end on the embedded runtime: a BEIR import, an evaluation through an
alias, a benchmark from simulated sessions, the HTML report and the terminal table, a diff."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from libs.datasets import scifact_dir
from offshoot import Client
from services.evaluation.reports import benchmark_table, comparison_table
from tests.evaluation.conftest import corpus_rows, dataset_queries
from tests.extractor.conftest import STATIC
from tests.retrieval.conftest import QUERY_SCHEMA, search_stage


def test_sdk_evaluates_benchmarks_and_reports(tmp_path: Path) -> None:
    with Client.embedded(tmp_path / "data") as root:
        ns = root.namespaces.create("prod")["namespace_id"]
        client = root.with_namespace(ns)
        bucket = client.buckets.create("papers")["bucket_id"]
        collection = client.collections.create(
            "abstracts", source={"type": "bucket", "bucket_id": bucket}, feature_extractor=STATIC
        )["collection_id"]
        rows = corpus_rows(dataset_queries(10), filler=30)
        client.objects.create_batch(bucket, [
            {"fields": {"text": f"{r['title']} {r['text']}", "_id": r["_id"]}} for r in rows
        ])  # fmt: skip
        retriever = client.retrievers.create(
            "dense", collection_identifiers=["abstracts"], stages=[search_stage(top_k=100)],
            input_schema=QUERY_SCHEMA,
        )["retriever_id"]  # fmt: skip
        client.aliases.create("search", retriever)
        for _ in range(500):  # the documents are searchable a moment later
            if len(client.documents.list(collection, limit=1000)["results"]) == len(rows):
                break
            time.sleep(0.02)

        dataset = client.datasets.import_beir(scifact_dir(), split="test")
        assert dataset["query_count"] == 300 and dataset["dataset_name"] == "scifact-test"
        started = client.retrievers.evaluations.run(
            "search", dataset["dataset_id"], k_values=[1, 10]
        )
        assert client.tasks.wait(started["task_id"])["status"] == "COMPLETED"
        result = client.retrievers.evaluations.get(started["evaluation_id"])
        assert set(result["metrics_by_k"]) == {"1", "10"}
        assert result["retriever_id"] == retriever and result["alias_name"] == "search"
        assert len(result["missing_documents"]) > 0  # most of SciFact is not in this corpus
        assert [e["evaluation_id"] for e in client.retrievers.evaluations.list()] == [
            started["evaluation_id"]
        ]

        client.interactions.simulate_from_dataset(dataset["dataset_id"], session_count=10, seed=1)
        benchmark = client.retrievers.benchmarks.create("same", retriever, ["search"], 10)
        task = client.retrievers.benchmarks.execute(benchmark["benchmark_id"])
        assert client.tasks.wait(task["task_id"])["status"] == "COMPLETED"
        replayed = client.retrievers.benchmarks.get(benchmark["benchmark_id"])["results"]
        assert replayed["comparisons"][retriever]["deltas"]["ndcg_at_k"] == 0

        out = client.retrievers.evaluations.report(
            [started["evaluation_id"]], tmp_path / "out" / "report.html",
            benchmark_id=benchmark["benchmark_id"],
        )  # fmt: skip
        page = out.read_text()
        assert (
            page.startswith("<!doctype html>")
            and "<svg" in page
            and "http" not in page.split("xmlns")[0]
        )
        assert (
            f"{result['metrics_by_k']['10']['ndcg']:.4f}" in page
        )  # the page shows the API's figure
        console = Console(record=True, width=200)
        console.print(comparison_table([result], retriever))  # a retriever id names the baseline
        console.print(benchmark_table(client.retrievers.benchmarks.get(benchmark["benchmark_id"])))
        printed = console.export_text()
        assert f"{result['metrics_by_k']['10']['ndcg']:.4f}" in printed
        assert "p = 1.0000" in printed

        assert client.collections.diff("abstracts", "abstracts")["change"] == "NONE"
