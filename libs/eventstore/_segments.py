"""The SQL that turns a fork chain into segments, shared verbatim by both backends.

A stream's ancestry is walked with one recursive query over ``streams`` (one primary-key lookup
per level). Each ancestor carries a *cutoff*: the smallest fork position on the chain below it,
so it contributes only its own events with ``global_position <= cutoff``; the stream itself has
no cutoff (``UNBOUNDED``). Nothing here scans a stream: the event lookups are index range scans
on ``events(stream_id, global_position)``.

Placeholders are ``$1..$n``; the SQLite adapter rewrites them to ``?1..?n``.
"""

from __future__ import annotations

import functools

MAX_DEPTH = 1000
"""Forks of forks deeper than this are refused (they would be a chain of 1000 clones)."""

UNBOUNDED = 2**63 - 1
"""The cutoff of the stream being read: every one of its own events counts."""

_COLUMNS = (
    "event_id",
    "stream_id",
    "stream_version",
    "global_position",
    "type",
    "data",
    "metadata",
    "recorded_at",
)
EVENT_COLUMNS = ", ".join(_COLUMNS)
"""Every event row is read in ``RecordedEvent``'s field order (so ``RecordedEvent(*row)`` works
when the driver already decodes the columns)."""

# $1: the stream, $2: its cutoff. Rows: every stream on the chain, leaf (depth 0) to root.
_ANCESTRY = f"""
WITH RECURSIVE ancestry(stream_id, parent_stream_id, fork_position, cutoff, depth) AS (
    SELECT stream_id, parent_stream_id, fork_position, CAST($2 AS BIGINT), 0
    FROM streams WHERE stream_id = $1
    UNION ALL
    SELECT s.stream_id, s.parent_stream_id, s.fork_position,
           CASE WHEN a.fork_position < a.cutoff THEN a.fork_position ELSE a.cutoff END,
           a.depth + 1
    FROM ancestry a JOIN streams s ON s.stream_id = a.parent_stream_id
    WHERE a.depth < {MAX_DEPTH}
)
"""

# $1: stream, $2: UNBOUNDED. Rows: (owner, cutoff) per segment, root first.
SEGMENTS = f"""{_ANCESTRY}
SELECT stream_id, cutoff FROM ancestry ORDER BY depth DESC
"""


@functools.lru_cache(maxsize=64)
def read_segments(count: int) -> str:
    """The events of ``count`` segments: $1 is from_version, then (owner, cutoff) pairs.

    One index range scan per segment. (A join of the ancestry with ``events`` would let
    PostgreSQL's planner hash-join the whole table.) Versions continue across segments and an
    ancestor's events precede the fork point, so position order is also version order.
    """
    branch = (
        f"SELECT {EVENT_COLUMNS} FROM events "
        "WHERE stream_id = ${} AND global_position <= ${} AND stream_version >= $1"
    )
    branches = [branch.format(2 * n + 2, 2 * n + 3) for n in range(count)]
    return "\nUNION ALL\n".join(branches) + "\nORDER BY stream_version"


# $1: parent, $2: the fork's at_position. Returns (base_version, depth of the parent's chain).
# Within one stream versions grow with positions (appends are serialised), so the version at a
# cutoff is the one of the last event at or before it: one backward index probe per ancestor.
# The nearest ancestor that has such an event decides, and it also holds the largest version.
FORK_BASE = f"""{_ANCESTRY}
SELECT COALESCE(MAX(version), 0), MAX(depth) FROM (
    SELECT a.depth AS depth,
           (SELECT e.stream_version FROM events e
            WHERE e.stream_id = a.stream_id AND e.global_position <= a.cutoff
            ORDER BY e.global_position DESC LIMIT 1) AS version
    FROM ancestry a
) AS versions
"""

READ_ALL = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE global_position > $1 ORDER BY global_position LIMIT $2
"""
