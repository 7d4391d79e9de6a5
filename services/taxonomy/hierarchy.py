"""The shape checks of a taxonomy's nodes: unique ids, known parents, one root, no cycle."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.taxonomy import TaxonomyNode
from libs.errors import InvalidInputError


def check_hierarchy(nodes: Sequence[TaxonomyNode]) -> None:
    """Raise ``InvalidInputError`` naming the first problem; a valid hierarchy is a tree."""
    ids = [n.node_id for n in nodes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidInputError(f"nodes: node ids {duplicates} appear more than once")
    parents = {n.node_id: n.parent_node_id for n in nodes}
    for node in nodes:
        if node.parent_node_id is not None and node.parent_node_id not in parents:
            raise InvalidInputError(
                f"nodes: node {node.node_id!r} names parent {node.parent_node_id!r}, "
                "which is not a node"
            )
    for node in nodes:
        seen = [node.node_id]
        current = node.parent_node_id
        while current is not None:
            if current in seen:
                cycle = " -> ".join([*seen[seen.index(current) :], current])
                raise InvalidInputError(f"nodes: the hierarchy has a cycle: {cycle}")
            seen.append(current)
            current = parents[current]
    roots = [n.node_id for n in nodes if n.parent_node_id is None]
    if len(roots) != 1:
        raise InvalidInputError(f"nodes: a taxonomy has exactly one root node, found {roots}")
