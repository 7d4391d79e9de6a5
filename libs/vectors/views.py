"""View algebra shared by both adapters: forks, materialised views, point ids, and the
visibility filters that make a shared physical collection look like one view's points.

Everything here is pure: no I/O, so the rules are tested once and cannot differ per adapter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from libs.errors import InvalidInputError
from libs.vectors.base import Mask, Segment, SpaceSpec, View
from libs.vectors.filters import (
    And,
    Eq,
    Exists,
    Filter,
    HasId,
    IsNull,
    Lte,
    Not,
    all_of,
    any_of,
)

_POINT_NS = uuid.UUID("6f1d3c2e-3b7a-5c44-9f0e-2a8b51c0d7e1")
GENERATION_MARK = "~"


def check_owner(owner: str) -> str:
    """Owner ids come from callers (stream ids); ``~`` is kept for materialised generations."""
    if not owner or owner != owner.strip() or any(c.isspace() for c in owner):
        raise InvalidInputError(f"owner id {owner!r} must be non-empty and without whitespace")
    if GENERATION_MARK in owner:
        raise InvalidInputError(f"owner id {owner!r} may not contain {GENERATION_MARK!r}")
    return owner


def point_id(owner: str, document_id: str, born: int) -> str:
    """Unique across a lineage (every owner is a distinct stream) and deterministic, so a replayed
    write lands on the same id and is a no-op (writes are insert-only)."""
    return str(uuid.uuid5(_POINT_NS, f"{owner}\x1f{document_id}\x1f{born}"))


def generation_owner(owner: str, position: int) -> str:
    """The owner a materialisation at ``position`` writes its copies under (see ``materialised``)."""
    return f"{owner}{GENERATION_MARK}{position}"


def root_view(space: SpaceSpec, owner: str) -> View:
    """A view that sees only its own live points."""
    return View(space=space, owner=check_owner(owner), segments=(Segment(owner=owner),))


def forked(parent: View, owner: str, at_position: int) -> View:
    """The child's view: the parent's segments frozen at ``at_position`` plus its own live one.

    Nothing is copied but the parent's masks made up to ``at_position`` (bounded by the
    materialisation threshold), so the cost does not depend on the number of points.
    """
    check_owner(owner)
    if at_position < 0:
        raise InvalidInputError(f"fork position must be >= 0, got {at_position}")
    if any(
        s.owner == owner or s.owner.startswith(owner + GENERATION_MARK) for s in parent.segments
    ):
        raise InvalidInputError(f"owner {owner!r} already appears in the parent view's lineage")
    latest = max((s.upto for s in parent.segments if s.upto is not None), default=-1)
    if at_position < latest:
        raise InvalidInputError(
            f"cannot fork view {parent.owner!r} at position {at_position}: it only exists "
            f"from position {latest}"
        )
    if parent.materialised_at is not None and at_position < parent.materialised_at:
        raise InvalidInputError(
            f"cannot fork view {parent.owner!r} at position {at_position}: it was materialised "
            f"at {parent.materialised_at}; fork positions must not precede it"
        )
    segments = tuple(
        Segment(owner=s.owner, upto=at_position if s.upto is None else min(s.upto, at_position))
        for s in parent.segments
    )
    return View(
        space=parent.space,
        owner=owner,
        segments=(*segments, Segment(owner=owner)),
        masked=tuple(m for m in parent.masked if m.position <= at_position),
        parent=parent.owner,
        forked_at=at_position,
    )


def with_masks(view: View, masks: Iterable[Mask]) -> View:
    """The view with more inherited points hidden (ids already masked keep their position)."""
    known = {m.point_id for m in view.masked}
    extra = tuple(m for m in masks if m.point_id not in known)
    return view if not extra else view.model_copy(update={"masked": view.masked + extra})


def materialised(view: View, position: int) -> View:
    """The view after its inherited points were copied under ``generation_owner(owner, position)``:
    only live segments, no masks. Copies go to a new owner rather than the view's own so that a
    reader holding the previous snapshot never sees them next to the originals, and the switch
    is the single registry write of this view."""
    latest = max((s.upto for s in view.segments if s.upto is not None), default=-1)
    if position < latest or (view.materialised_at is not None and position < view.materialised_at):
        raise InvalidInputError(
            f"cannot materialise view {view.owner!r} at position {position}: it is older than "
            "the view's segments"
        )
    generation = Segment(owner=generation_owner(view.owner, position))
    live = tuple(s for s in view.segments if s.live and s.owner != generation.owner)
    return view.model_copy(
        update={"segments": (generation, *live), "masked": (), "materialised_at": position}
    )


def segment_filter(segment: Segment) -> Filter:
    """Points of the segment: live ones, or as of ``upto`` (born <= upto, not dead by then)."""
    owner = Eq(field="owner", value=segment.owner)
    if segment.upto is None:
        return And(filters=(owner, IsNull(field="died")))
    # "died is null or died > upto" as "not died <= upto": the same points (died is null or a
    # position), one range check and one nesting level less per candidate in HNSW traversal.
    upto = segment.upto
    alive_then = Not(filter=Lte(field="died", value=upto))
    return And(filters=(owner, Lte(field="born", value=upto), alive_then))


def reachable(view: View) -> Filter:
    """Points any segment of the view reaches, masks ignored (what vacuum must keep)."""
    return any_of(*(segment_filter(s) for s in view.segments))


def visibility(view: View) -> Filter:
    """Exactly the points visible in the view: its segments minus its masks.

    Built only from the view itself, never from user input; callers AND it with the user's.
    """
    seen = reachable(view)
    if not view.masked:
        return seen
    return And(filters=(seen, _unmasked(view)))


def inherited_visibility(view: View) -> Filter | None:
    """Visible points of the inherited (non-live) segments: what materialisation copies."""
    inherited = tuple(s for s in view.segments if not s.live)
    if not inherited:
        return None
    return all_of(
        any_of(*(segment_filter(s) for s in inherited)),
        _unmasked(view) if view.masked else None,
    )


def _unmasked(view: View) -> Filter:
    # Mask ids are point ids the store itself wrote: skip re-validating thousands of UUIDs.
    masked = HasId.model_construct(ids=tuple(m.point_id for m in view.masked))
    return Not(filter=masked)


def garbage(views: Iterable[View], reserved_owners: Iterable[str] = ()) -> Filter:
    """Data points no registered view reaches: dead ones past every fork that referenced them,
    points of dropped views, and copies of a materialisation that never completed.
    ``reserved_owners`` are generations being written right now (kept as if live)."""
    keep: list[Filter] = [reachable(v) for v in views]
    keep += [Eq(field="owner", value=o) for o in reserved_owners]
    data_point = Exists(field="owner")
    if not keep:
        return data_point
    return And(filters=(data_point, Not(filter=any_of(*keep))))


def needs_materialise(view: View, *, max_masks: int) -> bool:
    """Masks cost a ``has_id`` check per candidate; past ``max_masks`` copying is cheaper."""
    return len(view.masked) >= max_masks
