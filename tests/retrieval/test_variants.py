"""Canary assignment and shadow comparison arithmetic (pure, no runtime)."""

from __future__ import annotations

import pytest

from services.retrieval.variants import bucket, compare, in_canary


@pytest.mark.parametrize("percent", [5.0, 10.0, 25.0, 50.0, 90.0])
def test_canary_share_over_10000_users_is_within_3_points(percent: float) -> None:
    users = [f"user-{i}" for i in range(10_000)]

    share = 100 * sum(in_canary("ali_production", u, percent) for u in users) / len(users)

    assert abs(share - percent) <= 3


def test_a_user_always_gets_the_same_variant() -> None:
    first = [in_canary("ali_production", f"user-{i}", 30.0) for i in range(1000)]
    again = [in_canary("ali_production", f"user-{i}", 30.0) for i in range(1000)]

    assert first == again


def test_raising_the_percent_only_moves_users_into_the_canary() -> None:
    users = [f"user-{i}" for i in range(2000)]

    at_10 = {u for u in users if in_canary("ali_production", u, 10.0)}
    at_40 = {u for u in users if in_canary("ali_production", u, 40.0)}

    assert at_10 < at_40


def test_two_aliases_split_users_independently() -> None:
    users = [f"user-{i}" for i in range(2000)]

    assert [bucket("ali_a", u) for u in users] != [bucket("ali_b", u) for u in users]


def test_identical_rankings_overlap_fully_with_no_shift() -> None:
    result = compare(["a", "b", "c"], ["a", "b", "c"])

    assert (result.k, result.overlap_at_k, result.mean_rank_shift) == (3, 1.0, 0.0)


def test_overlap_counts_the_primarys_top_k_and_shift_only_shared_documents() -> None:
    # shadow top-4: d, a, x, b -> shares a (0 -> 1), b (1 -> 3), d (3 -> 0)
    result = compare(["a", "b", "c", "d"], ["d", "a", "x", "b", "c"])

    assert result.k == 4
    assert result.overlap_at_k == 0.75
    assert result.mean_rank_shift == pytest.approx((1 + 2 + 3) / 3)


def test_disjoint_rankings_have_no_overlap_and_no_shift() -> None:
    result = compare(["a", "b"], ["x", "y"])

    assert (result.overlap_at_k, result.mean_rank_shift) == (0.0, None)
