"""Paired significance for benchmark deltas, numpy only and seeded (a report must be
reproducible): a two-sided sign-flip permutation test on per-session differences, and a
percentile bootstrap confidence interval of their mean.

The permutation test is exact (every sign pattern) up to 16 sessions and Monte Carlo with
``rounds`` patterns beyond; its p-value counts the observed pattern, so it is never 0, and it is
1 when every difference is 0 (identical retrievers are never "significant").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

EXACT_UP_TO = 16
TOLERANCE = 1e-12


class PairedTest(BaseModel):
    model_config = ConfigDict(frozen=True)

    mean_delta: float
    p_value: float
    ci_low: float
    ci_high: float
    method: str
    significant: bool


def _signs(n: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    if n <= EXACT_UP_TO:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    return rng.choice(np.array([1.0, -1.0]), size=(rounds, n))


def paired_test(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    seed: int = 0,
    rounds: int = 10_000,
    alpha: float = 0.05,
) -> PairedTest:
    """Is the candidate's mean different from the baseline's on the same sessions?"""
    diffs = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if diffs.size == 0:
        return PairedTest(mean_delta=0.0, p_value=1.0, ci_low=0.0, ci_high=0.0,
                          method="none", significant=False)  # fmt: skip
    rng = np.random.default_rng(seed)
    observed = abs(float(diffs.mean()))
    signs = _signs(diffs.size, rounds, rng)
    permuted = np.abs((signs * diffs).mean(axis=1))
    exact = diffs.size <= EXACT_UP_TO
    extreme = int((permuted >= observed - TOLERANCE).sum())
    p_value = extreme / len(signs) if exact else (extreme + 1) / (len(signs) + 1)
    samples = rng.integers(0, diffs.size, size=(rounds, diffs.size))
    means = diffs[samples].mean(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return PairedTest(
        mean_delta=float(diffs.mean()), p_value=min(1.0, float(p_value)),
        ci_low=float(low), ci_high=float(high),
        method="exact sign-flip permutation" if exact else f"sign-flip permutation ({rounds})",
        significant=bool(p_value < alpha),
    )  # fmt: skip


__all__ = ["PairedTest", "paired_test"]
