"""Feature-extractor throughput on SciFact abstracts (title + " " + text).

    .venv/bin/python bench/extract.py [--count 1000] [--mpnet-count 100] [--only minilm,bm25]

For each extractor: the raw model throughput (the model alone, loaded and warmed first, no
cache) and the pipeline throughput (``pipeline_throughput``: today chunk -> inference cache ->
model, cold then warm, in a temporary cache; the vector-store write joins it later); for BM25
also its retrieval quality on SciFact (NDCG@10). The load average is printed too: on a shared
2-core machine it explains most of the variance.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from libs.extractors import (
    CachedExtractor,
    ConfiguredExtractor,
    InferenceCache,
    ModelUnavailableError,
    SparseEmbedding,
    get_extractor,
)
from libs.extractors.bm25 import idf

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
EXTRACTORS = ("minilm-static", "bm25", "minilm", "mpnet")


def scifact_abstracts(count: int) -> list[str]:
    """The first ``count`` SciFact documents as title + " " + text."""
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as lines:
        documents = [json.loads(line) for _, line in zip(range(count), lines, strict=False)]
    return [f"{document['title']} {document['text']}" for document in documents]


def raw_throughput(extractor: ConfiguredExtractor, texts: Sequence[str]) -> dict[str, float]:
    """Texts/s of the model alone: one ``embed`` over all texts, after loading and a warm-up."""
    started = time.perf_counter()
    extractor.embed(["warm-up: loads the model"])
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    embeddings = extractor.embed(texts)
    seconds = time.perf_counter() - started
    return {
        "first call incl. load (s)": loaded,
        f"raw model, {len(texts):,} texts (texts/s)": len(texts) / seconds,
        "texts truncated (%)": 100 * sum(e.truncated for e in embeddings) / len(embeddings),
    }


def pipeline_throughput(extractor: ConfiguredExtractor, objects: Sequence[str]) -> dict[str, float]:
    """Objects/s through what ingestion runs per object: chunking, then the cached extractor.

    Extend here with the vector-store write (objects -> stored vectors) once the store exists.
    """
    figures: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        InferenceCache(Path(scratch) / "inference.sqlite3") as cache,
    ):
        cached = CachedExtractor(extractor, cache)
        for label in ("cold cache", "warm cache"):
            started = time.perf_counter()
            chunks = [chunk.text for text in objects for chunk in cached.chunk(text)]
            cached.embed(chunks)
            seconds = time.perf_counter() - started
            figures[f"pipeline {label}, {len(objects):,} objects (objects/s)"] = (
                len(objects) / seconds
            )
        figures["cache hit ratio after both runs"] = cached.cache_stats.hit_ratio
    return figures


def bm25_scifact_ndcg(extractor: ConfiguredExtractor) -> float:
    """NDCG@10 of BM25 over all 5,183 SciFact abstracts on the 300 test queries, scored as the
    vector store will (document weights x query weights x IDF): comparable with Anserini."""
    corpus = scifact_abstracts(10_000)
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as lines:
        ids = [json.loads(line)["_id"] for line in lines]
    with gzip.open(SCIFACT / "queries.jsonl.gz", "rt") as lines:
        queries = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    relevant: dict[str, dict[str, int]] = {}
    for row in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, document_id, grade = row.split("\t")
        relevant.setdefault(query_id, {})[document_id] = int(grade)
    postings: dict[int, list[tuple[int, float]]] = {}
    for number, vector in enumerate(extractor.embed(corpus)):
        if isinstance(vector, SparseEmbedding):
            for token, weight in zip(vector.indices.tolist(), vector.values.tolist(), strict=True):
                postings.setdefault(token, []).append((number, weight))
    total = 0.0
    for query_id, judged in relevant.items():
        (query,) = extractor.embed([queries[query_id]], role="query")
        assert isinstance(query, SparseEmbedding)  # bm25@v1 is sparse
        scores: dict[int, float] = {}
        for token in query.indices.tolist():
            hits = postings.get(token, [])
            token_idf = idf(len(corpus), len(hits))
            for number, weight in hits:
                scores[number] = scores.get(number, 0.0) + token_idf * weight
        ranked = sorted(scores, key=lambda n: -scores[n])[:10]
        gain = sum(judged.get(ids[n], 0) / math.log2(rank + 2) for rank, n in enumerate(ranked))
        ideal = sorted(judged.values(), reverse=True)[:10]
        total += gain / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return total / len(relevant)


def print_table(title: str, figures: dict[str, float]) -> None:
    print(f"\n## {title}")
    for label, value in figures.items():
        shown = f"{value:>12,.4f}" if abs(value) < 1 else f"{value:>12,.2f}"
        print(f"  {label:<55} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="abstracts per model")
    parser.add_argument("--mpnet-count", type=int, default=100, help="abstracts for mpnet@v1")
    parser.add_argument(
        "--pipeline-count", type=int, default=100, help="objects for the slow models' pipeline"
    )
    parser.add_argument("--only", default=",".join(EXTRACTORS), help="comma-separated names")
    args = parser.parse_args()

    texts = scifact_abstracts(max(args.count, args.mpnet_count))
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()}")
    for name in args.only.split(","):
        extractor = get_extractor(name, "v1")
        count = args.mpnet_count if name == "mpnet" else args.count
        slow = name in {"minilm", "mpnet"}
        try:
            figures = raw_throughput(extractor, texts[:count])
        except ModelUnavailableError as missing:
            print(f"\n## {extractor.info.feature_uri}\n  skipped: {missing}")
            continue
        objects = texts[: min(count, args.pipeline_count)] if slow else texts[:count]
        figures |= pipeline_throughput(extractor, objects)
        if name == "bm25":
            figures["SciFact NDCG@10, 300 test queries"] = bm25_scifact_ndcg(extractor)
        print_table(extractor.info.feature_uri, figures)
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
