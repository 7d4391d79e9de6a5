"""services/evaluation/metrics.py agrees with ranx (trec_eval conventions) to 1e-9 for every
metric and k: on random runs with graded relevance and on a BM25 run over SciFact."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from ranx import Qrels, Run, evaluate

from libs.datasets import scifact_dir
from services.evaluation.metrics import METRICS, evaluate_runs, query_metrics

K_VALUES = [1, 3, 5, 10, 20, 100]
RANX_NAME = {"precision": "precision", "recall": "recall", "f1": "f1", "map": "map",
             "ndcg": "ndcg", "mrr": "mrr"}  # fmt: skip


def ranx_scores(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """ranx's means; the run's scores are descending by rank, so ranx keeps our order."""
    run = Run({q: {doc: float(len(r) - i) for i, doc in enumerate(r)} for q, r in runs.items()})
    judged = Qrels({q: dict(j) for q, j in qrels.items()})
    names = [f"{RANX_NAME[m]}@{k}" for m in METRICS for k in K_VALUES]
    names += [RANX_NAME[m] for m in METRICS]
    scores = evaluate(judged, run, names, make_comparable=True)
    return {name: float(value) for name, value in scores.items()}


def ours(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    overall, by_k, _ = evaluate_runs(runs, qrels, K_VALUES)
    flat = {RANX_NAME[m]: overall[m] for m in METRICS}
    flat |= {f"{RANX_NAME[m]}@{k}": by_k[k][m] for m in METRICS for k in K_VALUES}
    return flat


def random_case(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(300)]
    runs, qrels = {}, {}
    for q in range(40):
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if all(g == 0 for g in qrels[f"q{q}"].values()):
            qrels[f"q{q}"][judged[0]] = 2
        pool = judged + rng.sample(docs, 40)
        runs[f"q{q}"] = list(dict.fromkeys(rng.sample(pool, rng.randint(1, len(pool)))))
    return runs, qrels


@pytest.mark.parametrize("seed", range(5))
def test_random_graded_runs_agree_with_ranx(seed: int) -> None:
    runs, qrels = random_case(seed)
    expected, got = ranx_scores(runs, qrels), ours(runs, qrels)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_a_worked_example() -> None:
    """trec_eval by hand: grades 3 and 1 retrieved at ranks 2 and 3, a grade-2 one missed."""
    qrels = {"a": 3, "b": 1, "c": 2, "z": 0}
    got = query_metrics(["x", "a", "b", "z"], qrels, 3)
    dcg = 3 / np.log2(3) + 1 / np.log2(4)
    idcg = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert got["ndcg"] == pytest.approx(dcg / idcg)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert got["mrr"] == pytest.approx(1 / 2)


def test_precision_divides_by_k_even_when_fewer_were_retrieved() -> None:
    assert query_metrics(["a"], {"a": 1}, 10)["precision"] == pytest.approx(0.1)


def test_no_relevant_document_scores_zero_and_bad_k_is_refused() -> None:
    assert set(query_metrics(["a"], {"a": 0}, 5).values()) == {0.0}
    with pytest.raises(ValueError, match="k must be"):
        query_metrics(["a"], {"a": 1}, 0)


def _tokens(text: str) -> list[str]:
    return [t for t in "".join(c.lower() if c.isalnum() else " " for c in text).split() if t]


def scifact_bm25_run(depth: int = 100) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """A deterministic BM25 (k1 = 0.9, b = 0.4) run over SciFact test in plain numpy."""
    root = scifact_dir()
    with gzip.open(root / "corpus.jsonl.gz", "rt") as lines:
        corpus = [json.loads(line) for line in lines]
    with gzip.open(root / "queries.jsonl.gz", "rt") as lines:
        queries = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / "test.tsv") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    vocabulary: dict[str, int] = {}
    docs = [_tokens(f"{d['title']} {d['text']}") for d in corpus]
    postings: dict[int, dict[int, int]] = {}
    for index, tokens in enumerate(docs):
        for token in tokens:
            term = vocabulary.setdefault(token, len(vocabulary))
            postings.setdefault(term, {})[index] = postings.get(term, {}).get(index, 0) + 1
    lengths = np.array([len(t) for t in docs], dtype=np.float64)
    norm = 0.9 * (1 - 0.4 + 0.4 * lengths / lengths.mean())
    runs = {}
    for query_id in qrels:
        scores = np.zeros(len(docs))
        for token in set(_tokens(queries[query_id])):
            found = postings.get(vocabulary.get(token, -1), {})
            if not found:
                continue
            idf = np.log(1 + (len(docs) - len(found) + 0.5) / (len(found) + 0.5))
            rows = np.fromiter(found, dtype=np.int64)
            tf = np.fromiter(found.values(), dtype=np.float64)
            scores[rows] += idf * tf * 1.9 / (tf + norm[rows])
        order = np.lexsort((np.arange(len(docs)), -scores))[:depth]
        runs[query_id] = [corpus[i]["_id"] for i in order]
    return runs, qrels


def test_scifact_bm25_run_agrees_with_ranx() -> None:
    runs, qrels = scifact_bm25_run()
    assert len(qrels) == 300
    expected, got = ranx_scores(runs, qrels), ours(runs, qrels)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    assert 0.6 < got["ndcg@10"] < 0.72  # a sane BM25 figure on SciFact
