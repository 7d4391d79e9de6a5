"""Fusion of ranked lists ("legs") into one ranking: pure functions, no I/O.

Each leg is a ranked list of ``(document_id, score)`` best first, with a weight. Documents are
matched across legs by id. Ties in the fused score keep the order of first appearance (leg by
leg, rank by rank), so results are deterministic. The methods:

- ``rrf``: reciprocal rank fusion, ``score(d) = sum_legs weight / (k + rank)``, rank from 1,
  ``k = 60`` by default (Cormack et al. 2009). Uses ranks only, so scores of different models
  need no calibration.
- ``weighted``: each leg's scores are min-max normalised to [0, 1] first (``(s - min) /
  (max - min)``; a leg whose scores are all equal gives each of them 1), then
  ``score(d) = sum_legs weight * normalised``. A document absent from a leg gets 0 from it.
  Normalising first is what makes weights mean something: cosine scores of one model and BM25
  scores of another live on different scales.
- ``max``: the best ``weight * normalised`` over the legs (same min-max normalisation).
- ``dbsf``: distribution-based score fusion (as in Qdrant): each leg's scores are normalised by
  ``(s - (mean - 3 sd)) / (6 sd)`` (population sd over the leg's returned scores; a leg with
  sd = 0 gives each 0.5), then ``score(d) = sum_legs weight * normalised``. Robust to a single
  outlier that would stretch a min-max range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["FusionMethod", "Leg", "dbsf", "fuse", "max_fusion", "rrf", "weighted"]

FusionMethod = Literal["rrf", "weighted", "max", "dbsf"]
RRF_K = 60


@dataclass(frozen=True, slots=True)
class Leg:
    """One ranked list, best first, and how much it counts."""

    ranked: Sequence[tuple[str, float]]
    weight: float = 1.0


def _accumulate(
    legs: Sequence[Leg],
    contribution: Callable[[Leg], list[float]],
    combine: Callable[[float, float], float],
) -> list[tuple[str, float]]:
    fused: dict[str, float] = {}
    for leg in legs:
        for (document_id, _), value in zip(leg.ranked, contribution(leg), strict=True):
            fused[document_id] = (
                combine(fused[document_id], value) if document_id in fused else value
            )
    order = {document_id: position for position, document_id in enumerate(fused)}
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))


def _first_only(legs: Sequence[Leg]) -> list[Leg]:
    """A document listed twice in one leg counts once there, at its best (first) rank."""
    cleaned = []
    for leg in legs:
        seen: set[str] = set()
        ranked = []
        for document_id, score in leg.ranked:
            if document_id not in seen:
                seen.add(document_id)
                ranked.append((document_id, score))
        cleaned.append(Leg(ranked=ranked, weight=leg.weight))
    return cleaned


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores mapped to [0, 1]; all equal (or a single score) map to 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def three_sigma(scores: Sequence[float]) -> list[float]:
    """Scores mapped by mean ± 3 population sd to about [0, 1]; sd = 0 maps to 0.5."""
    if not scores:
        return []
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if sd == 0.0:
        return [0.5] * len(scores)
    low = mean - 3 * sd
    return [(s - low) / (6 * sd) for s in scores]


def rrf(legs: Sequence[Leg], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ``sum weight / (k + rank)``, rank from 1."""
    return _accumulate(
        _first_only(legs),
        lambda leg: [leg.weight / (k + rank) for rank in range(1, len(leg.ranked) + 1)],
        lambda a, b: a + b,
    )


def weighted(legs: Sequence[Leg]) -> list[tuple[str, float]]:
    """Sum of ``weight * min-max normalised score`` over the legs."""
    return _accumulate(
        _first_only(legs),
        lambda leg: [leg.weight * s for s in min_max([score for _, score in leg.ranked])],
        lambda a, b: a + b,
    )


def max_fusion(legs: Sequence[Leg]) -> list[tuple[str, float]]:
    """Best ``weight * min-max normalised score`` over the legs."""
    return _accumulate(
        _first_only(legs),
        lambda leg: [leg.weight * s for s in min_max([score for _, score in leg.ranked])],
        max,
    )


def dbsf(legs: Sequence[Leg]) -> list[tuple[str, float]]:
    """Sum of ``weight * (mean ± 3 sd) normalised score`` over the legs."""
    return _accumulate(
        _first_only(legs),
        lambda leg: [leg.weight * s for s in three_sigma([score for _, score in leg.ranked])],
        lambda a, b: a + b,
    )


def fuse(method: FusionMethod, legs: Sequence[Leg], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """Dispatch by name (the ``fusion`` parameter of ``feature_search``)."""
    match method:
        case "rrf":
            return rrf(legs, k=k)
        case "weighted":
            return weighted(legs)
        case "max":
            return max_fusion(legs)
        case "dbsf":
            return dbsf(legs)
