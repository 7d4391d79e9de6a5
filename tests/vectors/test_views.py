"""The pure view algebra and filter language (no store): forks, masks, materialisation, the
filters built from views, and the adapter-picking URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from libs.errors import InvalidInputError
from libs.vectors import (
    And,
    EdgeVectorStore,
    Eq,
    Exists,
    HasId,
    In,
    IsNull,
    Mask,
    Not,
    Or,
    QdrantVectorStore,
    Segment,
    SpaceSpec,
    View,
    open_vector_store,
    parse_filter,
    to_edge_filter,
    to_qdrant_filter,
    views,
)
from tests.vectors.conftest import URI

SPACE = SpaceSpec(lineage_root="ns_root", feature_uri=URI, dimension=8)


def test_fork_freezes_the_parents_segments_and_keeps_earlier_masks() -> None:
    a = views.root_view(SPACE, "ns_a")
    b = views.forked(a, "ns_b", 10)
    b = views.with_masks(b, [Mask(point_id="p1", position=12), Mask(point_id="p2", position=20)])
    c = views.forked(b, "ns_c", 15)
    assert c.segments == (
        Segment(owner="ns_a", upto=10),
        Segment(owner="ns_b", upto=15),
        Segment(owner="ns_c"),
    )
    assert [m.point_id for m in c.masked] == ["p1"]  # p2 was masked after the fork
    assert (c.parent, c.forked_at) == ("ns_b", 15)
    with pytest.raises(InvalidInputError, match="only exists from position 10"):
        views.forked(b, "ns_d", 9)
    with pytest.raises(InvalidInputError, match="lineage"):
        views.forked(c, "ns_a", 30)
    with pytest.raises(InvalidInputError, match=">= 0"):
        views.forked(a, "ns_e", -1)


def test_masks_are_added_once_with_their_first_position() -> None:
    view = views.forked(views.root_view(SPACE, "ns_a"), "ns_b", 1)
    once = views.with_masks(view, [Mask(point_id="p", position=3)])
    assert views.with_masks(once, [Mask(point_id="p", position=9)]) is once
    assert views.needs_materialise(once, max_masks=1)
    assert not views.needs_materialise(once, max_masks=2)


def test_materialised_view_has_only_its_own_live_segments() -> None:
    b = views.forked(views.root_view(SPACE, "ns_a"), "ns_b", 10)
    b = views.with_masks(b, [Mask(point_id="p", position=11)])
    m = views.materialised(b, 12)
    assert m.segments == (Segment(owner="ns_b~12"), Segment(owner="ns_b"))
    assert m.masked == () and m.materialised_at == 12
    assert views.inherited_visibility(m) is None
    assert views.materialised(m, 20).segments == (
        Segment(owner="ns_b~20"),
        Segment(owner="ns_b~12"),
        Segment(owner="ns_b"),
    )
    with pytest.raises(InvalidInputError, match="older than"):
        views.materialised(b, 9)


def test_visibility_filters() -> None:
    a = views.root_view(SPACE, "ns_a")
    assert views.visibility(a) == And(
        filters=(Eq(field="owner", value="ns_a"), IsNull(field="died"))
    )
    masked = views.point_id("ns_a", "d", 1)
    b = views.with_masks(views.forked(a, "ns_b", 5), [Mask(point_id=masked, position=6)])
    visible = views.visibility(b)
    assert isinstance(visible, And)
    segments, unmasked = visible.filters
    assert isinstance(segments, Or) and len(segments.filters) == 2
    assert unmasked == Not(filter=HasId(ids=(masked,)))
    assert views.garbage([]) == Exists(field="owner")  # never the registry records
    kept = views.garbage([a], ["ns_a~3"])
    assert isinstance(kept, And) and isinstance(kept.filters[1], Not)
    # Both compilers accept everything the views produce.
    assert to_edge_filter(visible) is not None
    assert to_qdrant_filter(visible).must_not is not None


def test_point_ids_are_deterministic_and_distinct() -> None:
    assert views.point_id("col_a", "d1", 5) == views.point_id("col_a", "d1", 5)
    distinct = {
        views.point_id("col_a", "d1", 5),
        views.point_id("col_b", "d1", 5),
        views.point_id("col_a", "d1", 6),
        views.point_id("col_a", "d2", 5),
    }
    assert len(distinct) == 4


def test_views_are_validated() -> None:
    with pytest.raises(ValidationError, match="own"):
        View(space=SPACE, owner="ns_a", segments=(Segment(owner="ns_b"),))
    with pytest.raises(ValidationError, match="once"):
        View(space=SPACE, owner="ns_a", segments=(Segment(owner="ns_a"), Segment(owner="ns_a")))
    with pytest.raises(InvalidInputError, match="whitespace"):
        views.root_view(SPACE, "ns a")


def test_filter_language_round_trips_and_is_strict() -> None:
    data = {
        "op": "and",
        "filters": [
            {"op": "eq", "field": "lang", "value": "en"},
            {"op": "not", "filter": {"op": "in", "field": "year", "values": [2020, 2021]}},
            {"op": "or", "filters": [{"op": "gte", "field": "score", "value": 0.5}]},
        ],
    }
    parsed = parse_filter(data)
    assert parse_filter(parsed.model_dump()) == parsed
    assert isinstance(parsed, And) and parsed.filters[1] == Not(
        filter=In(field="year", values=(2020, 2021))
    )
    for bad in (
        {"op": "eq", "field": "x", "value": 1.5},  # eq on floats: use a range
        {"op": "in", "field": "x", "values": ["a", 1]},  # Qdrant matches one type at a time
        {"op": "in", "field": "x", "values": []},
        {"op": "eq", "field": "x", "value": "a", "extra": 1},
        {"op": "gt", "field": "x", "value": float("nan")},
        {"op": "regex", "field": "x", "value": "a"},
        {"op": "has_id", "ids": ["not-a-uuid"]},
    ):
        with pytest.raises(ValidationError):
            parse_filter(bad)


def test_open_vector_store_picks_the_adapter(tmp_path: Path) -> None:
    assert isinstance(open_vector_store(f"edge://{tmp_path}"), EdgeVectorStore)
    assert isinstance(open_vector_store("http://localhost:6333"), QdrantVectorStore)
    for bad in ("edge://host/path", "ftp://x", "http://"):
        with pytest.raises(InvalidInputError):
            open_vector_store(bad)
