"""Ranking metrics, pure Python + numpy, with trec_eval's (and ranx's) conventions, so a figure
here can be compared with a published one:

- a document is relevant when its grade is ≥ 1; a grade of 0 is a judged non-relevant document;
- ``precision@k`` = relevant in the top k / k (divided by k even when fewer were retrieved);
- ``recall@k`` = relevant in the top k / all relevant documents of the query;
- ``f1@k`` = harmonic mean of the two; ``map@k`` = Σ precision@i over relevant ranks i ≤ k
  / all relevant documents (trec's AP, not divided by min(k, R));
- ``ndcg@k`` (Järvelin & Kekäläinen, trec_eval ``ndcg_cut``): gain = grade, discount
  log2(rank + 1), ideal = the query's judgements sorted by grade, cut at k;
- ``mrr@k`` = 1 / rank of the first relevant document in the top k.

``k = None`` ("overall") means the whole ranking (precision then divides by its length; the
ideal DCG then spans every judgement, as trec_eval's uncut ``ndcg``). A
query with no relevant document scores 0 on every metric (it still counts in the mean), as in
ranx. The ranking is given as ordered ids: ties were broken by whoever ranked them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

METRICS = ("precision", "recall", "f1", "map", "ndcg", "mrr")

Qrels = Mapping[str, int]


def _discounts(n: int) -> np.ndarray:
    return np.log2(np.arange(2, n + 2, dtype=np.float64))


def query_metrics(ranking: Sequence[str], qrels: Qrels, k: int | None = None) -> dict[str, float]:
    """Every metric of one query's ranking at cutoff ``k`` (``None``: the whole ranking)."""
    if k is not None and k <= 0:
        raise ValueError("k must be ≥ 1")
    relevant = {doc: grade for doc, grade in qrels.items() if grade >= 1}
    if not relevant:
        return dict.fromkeys(METRICS, 0.0)
    depth = len(ranking) if k is None else k
    top = ranking[:depth]
    grades = np.array([relevant.get(doc, 0) for doc in top], dtype=np.float64)
    hits = grades > 0
    hit_count = float(hits.sum())
    precision = hit_count / depth if depth else 0.0
    recall = hit_count / len(relevant)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ranks = np.flatnonzero(hits) + 1
    ap = float((np.arange(1, len(ranks) + 1) / ranks).sum()) / len(relevant)
    mrr = 1.0 / ranks[0] if len(ranks) else 0.0
    dcg = float((grades / _discounts(len(grades))).sum()) if len(grades) else 0.0
    ideal = np.sort(np.array(list(relevant.values()), dtype=np.float64))[::-1][:k]
    idcg = float((ideal / _discounts(len(ideal))).sum())
    ndcg = dcg / idcg if idcg else 0.0
    return {
        "precision": precision, "recall": recall, "f1": f1, "map": ap, "ndcg": ndcg,
        "mrr": float(mrr),
    }  # fmt: skip


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over queries (0 for none)."""
    if not rows:
        return dict.fromkeys(METRICS, 0.0)
    return {name: float(np.mean([row[name] for row in rows])) for name in METRICS}


def evaluate_runs(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Qrels],
    k_values: Sequence[int],
) -> tuple[dict[str, float], dict[int, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Score every query of ``qrels`` (a query missing from ``runs`` retrieved nothing):
    (overall means, means by k, per query ``{"overall": ..., "<k>": ...}``)."""
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for query_id, judged in qrels.items():
        ranking = runs.get(query_id, ())
        scores = {"overall": query_metrics(ranking, judged)}
        for k in k_values:
            scores[str(k)] = query_metrics(ranking, judged, k)
        per_query[query_id] = scores
    overall = mean_metrics([scores["overall"] for scores in per_query.values()])
    by_k = {k: mean_metrics([scores[str(k)] for scores in per_query.values()]) for k in k_values}
    return overall, by_k, per_query


def percentile(values: Sequence[float], q: float) -> float:
    """numpy's linear-interpolated percentile; 0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


__all__ = ["METRICS", "evaluate_runs", "mean_metrics", "percentile", "query_metrics"]
