"""The evaluation service through HTTP on both stacks (the catalog suite's ``api`` fixture:
embedded SQLite + in-process bus, and PostgreSQL + Kafka), over a slice of SciFact: the
abstracts judged relevant for the first test queries plus unjudged ones, embedded with
minilm-static@v1 by the real extractor."""

from __future__ import annotations

import csv
import gzip
import json
from functools import cache
from typing import Any

from libs.datasets import scifact_dir
from tests.catalog.conftest import Api, api, runtime_options  # noqa: F401 (fixtures)
from tests.extractor.conftest import STATIC
from tests.retrieval.conftest import QUERY_SCHEMA, search_stage, wait_documents


@cache
def _scifact() -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]]]:
    root = scifact_dir()
    with gzip.open(root / "corpus.jsonl.gz", "rt") as lines:
        corpus = [json.loads(line) for line in lines]
    with gzip.open(root / "queries.jsonl.gz", "rt") as lines:
        queries = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / "test.tsv") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return corpus, queries, qrels


def dataset_queries(count: int) -> list[dict[str, Any]]:
    """The first ``count`` SciFact test queries in the dataset API's shape."""
    _, queries, qrels = _scifact()
    return [
        {"query_id": q, "query_input": queries[q], "relevant_documents": list(judged),
         "relevance_scores": list(judged.values())}
        for q, judged in list(qrels.items())[:count]
    ]  # fmt: skip


def corpus_rows(queries: list[dict[str, Any]], filler: int) -> list[dict[str, Any]]:
    """The documents those queries judge relevant plus the first ``filler`` others."""
    corpus, _, _ = _scifact()
    wanted = {doc for q in queries for doc in q["relevant_documents"]}
    judged = [row for row in corpus if row["_id"] in wanted]
    return judged + [row for row in corpus if row["_id"] not in wanted][:filler]


async def namespace_with_corpus(
    client: Api, rows: list[dict[str, Any]], name: str = "papers"
) -> tuple[str, str]:
    """A namespace whose collection (minilm-static@v1 over title + " " + abstract, the SciFact
    id kept in the ``doc`` field) has every row searchable: (namespace_id, collection_id)."""
    ns = (await client.ok("POST", "/v1/namespaces", json={"namespace_name": name}))["namespace_id"]
    bucket = (await client.ok("POST", "/v1/buckets", namespace=ns, json={"bucket_name": "b"}))[
        "bucket_id"
    ]
    collection = await client.ok(
        "POST", "/v1/collections", namespace=ns,
        json={"collection_name": "abstracts", "source": {"type": "bucket", "bucket_id": bucket},
              "feature_extractor": STATIC},
    )  # fmt: skip
    objects = [{"fields": {"text": f"{r['title']} {r['text']}", "doc": r["_id"]}} for r in rows]
    await client.ok(
        "POST", f"/v1/buckets/{bucket}/objects/batch", namespace=ns, json={"objects": objects}
    )
    await wait_documents(client, ns, collection["collection_id"], len(rows))
    return ns, collection["collection_id"]


async def make_retriever(
    client: Api, ns: str, collection: str, name: str, *, query: str = "{{INPUT.query}}"
) -> str:
    body = {
        "retriever_name": name, "collection_identifiers": [collection],
        "input_schema": QUERY_SCHEMA, "stages": [search_stage(top_k=100, query=query)],
    }  # fmt: skip
    return str((await client.ok("POST", "/v1/retrievers", namespace=ns, json=body))["retriever_id"])


async def make_dataset(
    client: Api, ns: str, queries: list[dict[str, Any]], name: str = "gold"
) -> str:
    body = {"dataset_name": name, "queries": queries, "document_id_field": "doc"}
    reply = await client.ok("POST", "/v1/evaluations/datasets", namespace=ns, json=body)
    return str(reply["dataset_id"])
