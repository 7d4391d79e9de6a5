"""Canary assignment and shadow comparison: the pure arithmetic behind an alias's variants.

Assignment is a hash, not a coin: the same caller always lands in the same bucket of the same
alias, so a user sees one variant across requests and processes, and raising the percent only
moves users into the canary (their buckets do not change). The alias id salts the hash so two
aliases split their users independently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

BUCKETS = 10_000  # percent has two decimals of resolution


def bucket(alias_id: str, caller: str) -> int:
    """The caller's stable bucket in ``[0, BUCKETS)`` for this alias."""
    digest = hashlib.blake2b(f"{alias_id}\x00{caller}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def in_canary(alias_id: str, caller: str, percent: float) -> bool:
    return bucket(alias_id, caller) < round(percent * BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The shadow's ranking against the primary's top ``k`` (k = the primary's result count)."""

    k: int
    overlap_at_k: float
    mean_rank_shift: float | None


def compare(primary: Sequence[str], shadow: Sequence[str]) -> Comparison:
    """``overlap_at_k``: the share of the primary's top k the shadow also ranks in its top k
    (1.0 when both are empty). ``mean_rank_shift``: the mean |rank difference| of the documents
    both top-k lists hold (None when they share none)."""
    k = len(primary)
    top = list(shadow[:k])
    if k == 0:
        return Comparison(k=0, overlap_at_k=1.0 if not top else 0.0, mean_rank_shift=None)
    shadow_rank = {document: rank for rank, document in enumerate(top)}
    shifts = [
        abs(rank - shadow_rank[document])
        for rank, document in enumerate(primary)
        if document in shadow_rank
    ]
    return Comparison(
        k=k,
        overlap_at_k=len(shifts) / k,
        mean_rank_shift=sum(shifts) / len(shifts) if shifts else None,
    )


__all__ = ["BUCKETS", "Comparison", "bucket", "compare", "in_canary"]
