"""Fork views over read-model rows: how a namespace reads what it inherited without copying it.

Every read-model row carries ``owner`` (the stream that wrote it), ``born`` (the global position
of that write) and ``died`` (the position that replaced or deleted it, or NULL). A view is a list
of segments, nearest first: the namespace's own rows (live), then each ancestor's rows as of the
position it was forked at. For each key, the nearest segment's row wins; a ``deleted`` row
(a tombstone written by a fork over an inherited row) hides the key. Cloning therefore writes
nothing but the new view: O(1) in the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.ids import derive


@dataclass(frozen=True, slots=True)
class Segment:
    owner: str
    upto: int | None  # None: live, everything the owner has now


@dataclass(frozen=True, slots=True)
class View:
    segments: tuple[Segment, ...]

    @classmethod
    def root(cls, owner: str) -> View:
        return cls((Segment(owner, None),))

    @property
    def owner(self) -> str:
        return self.segments[0].owner

    def fork(self, owner: str, *, at_position: int) -> View:
        """The view of a fork of this one taken at ``at_position``."""
        return View((Segment(owner, None), *self.as_of(at_position).segments))

    def as_of(self, position: int) -> View:
        """This view as it was at ``position`` (time travel)."""
        return View(
            tuple(
                Segment(s.owner, position if s.upto is None else min(s.upto, position))
                for s in self.segments
            )
        )

    def present(self, owner: str, stored_id: str) -> str:
        """The id a row stored by ``owner`` has in this view: derived once per fork crossed."""
        return self.stored_ids(owner, stored_id)[-1]

    def stored_ids(self, owner: str, stored_id: str) -> list[str]:
        """Every id the same resource is stored under, from ``owner``'s level down to this view's."""
        index = next(i for i, segment in enumerate(self.segments) if segment.owner == owner)
        ids = [stored_id]
        for segment in reversed(self.segments[:index]):
            ids.append(derive(segment.owner, ids[-1]))
        return ids

    def to_json(self) -> list[list[Any]]:
        return [[s.owner, s.upto] for s in self.segments]

    @classmethod
    def from_json(cls, data: list[list[Any]]) -> View:
        return cls(
            tuple(Segment(str(owner), None if upto is None else int(upto)) for owner, upto in data)
        )


def visible_rows(
    table: str, key: str, view: View, *, where: str = "", args: tuple[Any, ...] = ()
) -> tuple[str, list[Any]]:
    """SQL selecting the rows of ``table`` visible in ``view`` (one per ``key``), and its arguments.

    ``where`` is an extra condition on the table's columns using placeholders ``$1..$n`` for
    ``args``; the view's own placeholders follow them. Columns of the result are the table's.
    """
    params: list[Any] = list(args)
    visible, rank = [], []
    for index, segment in enumerate(view.segments):
        params.append(segment.owner)
        owner = f"${len(params)}"
        if segment.upto is None:
            visible.append(f"(owner = {owner} AND died IS NULL)")
        else:
            params.append(segment.upto)
            upto = f"${len(params)}"
            visible.append(
                f"(owner = {owner} AND born <= {upto} AND (died IS NULL OR died > {upto}))"
            )
        rank.append(f"WHEN {owner} THEN {index}")
    condition = " OR ".join(visible)
    if where:
        condition = f"({where}) AND ({condition})"
    sql = (
        f"SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY {key} "
        f"ORDER BY CASE owner {' '.join(rank)} END) AS view_rank FROM {table} t WHERE {condition}) v "
        "WHERE view_rank = 1 AND NOT deleted"
    )
    return sql, params
