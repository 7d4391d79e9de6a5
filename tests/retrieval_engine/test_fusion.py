"""Fusion functions against hand computations (exact arithmetic on small lists)."""

from __future__ import annotations

import math

import pytest

from services.retrieval.engine.fusion import Leg, dbsf, fuse, max_fusion, rrf, weighted

A = Leg(ranked=[("a", 1.0), ("b", 0.75), ("c", 0.5)], weight=1.0)  # exact in binary
B = Leg(ranked=[("c", 12.0), ("d", 8.0), ("a", 4.0)], weight=0.5)


def test_rrf_by_hand() -> None:
    fused = dict(rrf([A, B], k=60))
    assert fused == pytest.approx(
        {
            "a": 1 / 61 + 0.5 / 63,
            "b": 1 / 62,
            "c": 1 / 63 + 0.5 / 61,
            "d": 0.5 / 62,
        }
    )
    assert [d for d, _ in rrf([A, B])] == ["a", "c", "b", "d"]


def test_weighted_min_max_by_hand() -> None:
    # A: a 1, b 0.5, c 0 ; B: c 1, d 0.5, a 0 (times 0.5)
    fused = dict(weighted([A, B]))
    assert fused == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.25})
    assert [d for d, _ in weighted([A, B])] == ["a", "b", "c", "d"]  # tie b/c: first seen


def test_max_by_hand() -> None:
    assert dict(max_fusion([A, B])) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.25})
    single = Leg(ranked=[("x", 3.0)], weight=2.0)
    assert max_fusion([single]) == [("x", 2.0)]  # a one-score leg normalises to 1


def test_dbsf_by_hand() -> None:
    sd_a = math.sqrt(((1.0 - 0.75) ** 2 + 0 + (0.5 - 0.75) ** 2) / 3)
    sd_b = math.sqrt(((12 - 8) ** 2 + 0 + (4 - 8) ** 2) / 3)

    def norm(score: float, mean: float, sd: float) -> float:
        return (score - (mean - 3 * sd)) / (6 * sd)

    expected = {
        "a": norm(1.0, 0.75, sd_a) + 0.5 * norm(4.0, 8.0, sd_b),
        "b": norm(0.75, 0.75, sd_a),
        "c": norm(0.5, 0.75, sd_a) + 0.5 * norm(12.0, 8.0, sd_b),
        "d": 0.5 * norm(8.0, 8.0, sd_b),
    }
    assert dict(dbsf([A, B])) == pytest.approx(expected)
    assert dbsf([Leg(ranked=[("x", 1.0), ("y", 1.0)])]) == [("x", 0.5), ("y", 0.5)]


def test_duplicates_within_a_leg_count_once_at_their_best_rank() -> None:
    leg = Leg(ranked=[("a", 0.9), ("a", 0.8), ("b", 0.7)])
    assert dict(rrf([leg])) == pytest.approx({"a": 1 / 61, "b": 1 / 62})


def test_dispatch_and_empty_legs() -> None:
    assert fuse("rrf", [A, B], k=1) == rrf([A, B], k=1)
    assert fuse("weighted", [A, Leg(ranked=[])]) == weighted([A])
    assert fuse("dbsf", []) == []
