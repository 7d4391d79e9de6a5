"""NDCG@10 on SciFact test (300 queries, the full 5,183-abstract corpus, title + " " + text):
measured through Offshoot (ingest, retriever, ``client.retrievers.evaluations``) against an
independent brute force scored with ranx:

- ``minilm-static@v1``: numpy dot products over the extractor's own vectors (computed here,
  outside the platform);
- ``minilm@v1``: numpy dot products over sentence-transformers' ``encode`` of the same model
  (slow on 2 cores: ~5 min for the corpus, so opt-in with ``--models minilm``);
- ``bm25@v1``: the published Anserini BM25 figures on BEIR SciFact (0.665 multifield, 0.679
  flat; Thakur et al., BEIR, 2021 and the BEIR leaderboard);
- ``mpnet@v1``: the published MTEB figure of all-mpnet-base-v2 on SciFact, NDCG@10 0.6557
  (about 40 min of embedding on 2 cores: ``bench/mpnet_scifact.py``).

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python bench/scifact_eval.py --models minilm-static,bm25``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ranx import Qrels, Run, evaluate

from libs.datasets import scifact_dir
from offshoot import Client

URIS = {
    "minilm-static": "offshoot://minilm-static@v1/text_embedding",
    "minilm": "offshoot://minilm@v1/text_embedding",
    "bm25": "offshoot://bm25@v1/sparse_embedding",
    "mpnet": "offshoot://mpnet@v1/text_embedding",
}
ANSERINI = {"multifield": 0.665, "flat": 0.679}
MTEB_MPNET = 0.6557  # MTEB leaderboard, sentence-transformers/all-mpnet-base-v2, SciFact NDCG@10
DEPTH = 100


def load() -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]]]:
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


def ndcg10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    return float(evaluate(Qrels(qrels), Run(run), "ndcg@10", make_comparable=True))


def brute_force(
    doc_vectors: np.ndarray, query_vectors: np.ndarray, doc_ids: list[str], query_ids: list[str]
) -> dict[str, dict[str, float]]:
    """Exact cosine top-100 (vectors normalised here, whatever the encoder returned)."""
    docs = doc_vectors / np.linalg.norm(doc_vectors, axis=1, keepdims=True)
    queries = query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)
    scores = queries @ docs.T
    run = {}
    for row, query_id in enumerate(query_ids):
        top = np.argsort(-scores[row], kind="stable")[:DEPTH]
        run[query_id] = {doc_ids[i]: float(scores[row, i]) for i in top}
    return run


def own_vectors(model: str, texts: list[str], role: str) -> np.ndarray:
    from libs.extractors import get_extractor

    extractor = get_extractor(model, "v1")
    out = []
    for start in range(0, len(texts), 256):
        out += [e.values for e in extractor.embed(texts[start : start + 256], role=role)]  # type: ignore[arg-type, union-attr]
    return np.vstack(out).astype(np.float64)


def st_vectors(texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from libs.extractors.registry import minilm_model_dir

    model = SentenceTransformer(str(minilm_model_dir()), device="cpu")
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), np.float64)


def through_offshoot(
    client: Client, model: str, corpus: list[dict[str, Any]], dataset_path: Path
) -> tuple[float, float, dict[str, float]]:
    """(NDCG@10, ingest seconds, latency) of a fresh namespace with one collection of ``model``."""
    scoped = client.with_namespace(client.namespaces.create(f"scifact-{model}")["namespace_id"])
    bucket = scoped.buckets.create("abstracts")["bucket_id"]
    spec = {"feature_extractor_name": model, "version": "v1"}
    collection = scoped.collections.create(
        "abstracts", source={"type": "bucket", "bucket_id": bucket}, feature_extractor=spec
    )["collection_id"]
    began = time.perf_counter()
    for start in range(0, len(corpus), 500):
        scoped.objects.create_batch(bucket, [
            {"fields": {"text": f"{r['title']} {r['text']}", "_id": r["_id"]}}
            for r in corpus[start : start + 500]
        ])  # fmt: skip
    while not scoped.documents.list(collection, limit=1, offset=len(corpus) - 1)["results"]:
        time.sleep(0.5)
    ingest = time.perf_counter() - began
    stage = {"stage_name": "search", "stage_type": "filter", "config": {
        "stage_id": "feature_search", "parameters": {"searches": [
            {"feature_uri": URIS[model], "query": "{{INPUT.query}}", "top_k": DEPTH}]}}}  # fmt: skip
    retriever = scoped.retrievers.create(model, collection_identifiers=[collection], stages=[stage])
    dataset = scoped.datasets.import_beir(dataset_path, split="test", document_id_field="_id")
    started = scoped.retrievers.evaluations.run(
        retriever["retriever_id"], dataset["dataset_id"], k_values=[10, 100]
    )
    done = scoped.retrievers.evaluations.wait(started["evaluation_id"])
    if done["status"] != "COMPLETED":
        raise SystemExit(f"{model}: evaluation {done['status']}: {done.get('error')}")
    return float(done["metrics_by_k"]["10"]["ndcg"]), ingest, dict(done["latency_ms"])


def main(default_models: str = "minilm-static,bm25") -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=default_models,
                        help="comma-separated: minilm-static, bm25, minilm, mpnet")  # fmt: skip
    models = [m.strip() for m in parser.parse_args().models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(URIS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {sorted(URIS)}")
    corpus, queries, qrels = load()
    doc_ids = [r["_id"] for r in corpus]
    texts = [f"{r['title']} {r['text']}" for r in corpus]
    query_ids = list(qrels)
    query_texts = [queries[q] for q in query_ids]
    print(f"SciFact test: {len(query_ids)} queries, {len(corpus)} documents")
    rows = []
    with tempfile.TemporaryDirectory() as scratch, Client.embedded(Path(scratch)) as client:
        for model in models:
            ours, ingest, latency = through_offshoot(client, model, corpus, scifact_dir())
            began = time.perf_counter()
            if model == "bm25":
                reference, source = ANSERINI["multifield"], "Anserini BM25 multifield (published)"
            elif model == "mpnet":
                reference, source = MTEB_MPNET, "MTEB all-mpnet-base-v2 SciFact (published)"
            elif model == "minilm":
                reference = ndcg10(brute_force(st_vectors(texts), st_vectors(query_texts),
                                               doc_ids, query_ids), qrels)  # fmt: skip
                source = "numpy brute force over sentence-transformers encode, ranx"
            else:
                reference = ndcg10(brute_force(
                    own_vectors(model, texts, "document"), own_vectors(model, query_texts, "query"),
                    doc_ids, query_ids), qrels)  # fmt: skip
                source = "numpy brute force over the extractor's own vectors, ranx"
            reference_s = time.perf_counter() - began
            rows.append((model, ours, reference, ours - reference, source, ingest, latency,
                         reference_s))  # fmt: skip
            print(f"{model:14s} offshoot {ours:.4f}  reference {reference:.4f}  "
                  f"Δ {ours - reference:+.4f}  ({source}); ingest {ingest:.1f} s, query p50 "
                  f"{latency['p50']:.1f} ms p95 {latency['p95']:.1f} ms", flush=True)  # fmt: skip
    print(
        "\n| model | Offshoot NDCG@10 | reference | Δ | reference source | ingest s | p50 ms | p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model, ours, reference, delta, source, ingest, latency, _ in rows:
        print(f"| {model}@v1 | {ours:.4f} | {reference:.4f} | {delta:+.4f} | {source} | "
              f"{ingest:.1f} | {latency['p50']:.1f} | {latency['p95']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
