"""Labelling one document with a taxonomy: the walk down its nodes through their retrievers.

Shared by ``apply`` (which writes the result), ``compare`` (which does not) and the
``taxonomy_enrich`` retriever stage (which labels results at query time), so all three give the
same label for the same document.

A flat taxonomy is a hierarchy of one node. At each level the candidate nodes (the root, then
the children of the node that matched) run their retrievers with inputs mapped from the
document; a node's match is its first result that carries a label, scores at least
``min_score`` and, for a child, sits under the label its parent chose (``parent_field``). The
best-scoring match of a level is kept and the walk goes on with its children, so a path never
holds a child without its parent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import JsonValue

from contracts.taxonomy import TaxonomyNode


class Executor(Protocol):
    """What labelling needs of the retrieval service (``RetrievalService`` satisfies it)."""

    async def execute(
        self,
        namespace_id: str,
        identifier: str,
        inputs: dict[str, JsonValue],
        *,
        limit: int | None = None,
    ) -> dict[str, Any]: ...


class DocumentError(Exception):
    """This document cannot be labelled (a mapped field is missing); recorded, not fatal."""


@dataclass(frozen=True, slots=True)
class Match:
    label: str
    score: float
    reference: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Labelled:
    """The outcome for one document: the chain of labels from the root, with scores, and the
    enrichment field values of the matched reference documents (deepest wins)."""

    path: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

    def top(self, output: str) -> tuple[str | None, float | None, list[str]]:
        """(label, score, path) as the taxonomy's ``output`` mode presents them."""
        if not self.path:
            return None, None, []
        if output == "best_match":
            best = max(range(len(self.scores)), key=lambda i: self.scores[i])
            return self.path[best], self.scores[best], [self.path[best]]
        return self.path[-1], self.scores[-1], list(self.path)


def lookup(payload: Mapping[str, Any], path: str) -> Any:
    """A dotted path in a payload (``None`` when any step is missing)."""
    current: Any = payload
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def fields_of(
    taxonomy: Mapping[str, Any],
    result: Labelled,
    *,
    current: Mapping[str, Any] | None = None,
    merge: str = "replace",
) -> dict[str, Any]:
    """The payload fields an apply writes for this outcome (``None`` clears a field).
    ``append`` keeps earlier labels: the label field becomes the list of every label seen."""
    out = str(taxonomy["output_field"])
    label, score, path = result.top(str(taxonomy.get("output", "full_chain")))
    fields: dict[str, Any] = {
        out: label,
        f"{out}_score": None if score is None else round(score, 6),
        f"{out}_path": path or None,
    }
    for name in enrichment_fields(taxonomy):
        fields[f"{out}_{name}"] = result.values.get(name)
    if merge == "append":
        before = (current or {}).get(out)
        labels = list(before) if isinstance(before, list) else [] if before is None else [before]
        if label is not None and label not in labels:
            labels.append(label)
        fields[out] = labels or None
    return fields


def enrichment_fields(taxonomy: Mapping[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for node in taxonomy["nodes"]:
        for name in node.get("enrichment_fields", []):
            seen[name] = None
    return list(seen)


class Labeler:
    """Labels documents of one namespace with one taxonomy (at most ``concurrency`` retriever
    executions at a time)."""

    def __init__(
        self,
        retrieval: Executor,
        namespace_id: str,
        taxonomy: Mapping[str, Any],
        *,
        concurrency: int = 8,
    ) -> None:
        self.retrieval = retrieval
        self.namespace_id = namespace_id
        self.taxonomy = taxonomy
        self.nodes = [TaxonomyNode.model_validate(n) for n in taxonomy["nodes"]]
        self.children: dict[str | None, list[TaxonomyNode]] = {}
        for node in self.nodes:
            self.children.setdefault(node.parent_node_id, []).append(node)
        self.inherited = self._inherited_fields()
        self.min_score: float | None = taxonomy.get("min_score")
        self.top_k = int(taxonomy.get("top_k", 50))
        self._gate = asyncio.Semaphore(concurrency)

    def _inherited_fields(self) -> dict[str, list[str]]:
        by_id = {n.node_id: n for n in self.nodes}
        result: dict[str, list[str]] = {}
        for node in self.nodes:
            chain: list[str] = []
            current: TaxonomyNode | None = node
            while current is not None:
                chain = [*current.enrichment_fields, *chain]
                current = by_id.get(current.parent_node_id or "")
            result[node.node_id] = list(dict.fromkeys(chain))
        return result

    @property
    def needs_vectors(self) -> set[str]:
        return {m.feature_uri for n in self.nodes for m in n.input_mappings if m.feature_uri}

    async def label_many(
        self, documents: Sequence[tuple[Mapping[str, Any], Sequence[float] | None]]
    ) -> list[Labelled | DocumentError]:
        async def one(payload: Mapping[str, Any], vector: Sequence[float] | None) -> Any:
            try:
                return await self.label(payload, vector)
            except DocumentError as error:
                return error

        return list(await asyncio.gather(*(one(p, v) for p, v in documents)))

    async def label(self, payload: Mapping[str, Any], vector: Sequence[float] | None) -> Labelled:
        path: list[str] = []
        scores: list[float] = []
        values: dict[str, Any] = {}
        frontier = self.children.get(None, [])
        parent_label: str | None = None
        while frontier:
            best: tuple[TaxonomyNode, Match] | None = None
            for node in frontier:
                found = await self._match(node, payload, vector, parent_label)
                if found is not None and (best is None or found.score > best[1].score):
                    best = (node, found)
            if best is None:
                break
            node, found = best
            path.append(found.label)
            scores.append(found.score)
            for name in self.inherited[node.node_id]:
                value = lookup(found.reference, name)
                if value is not None:
                    values[name] = value
            parent_label = found.label
            frontier = self.children.get(node.node_id, [])
        return Labelled(tuple(path), tuple(scores), values)

    def _inputs(
        self,
        node: TaxonomyNode,
        payload: Mapping[str, Any],
        vector: Sequence[float] | None,
        parent_label: str | None,
    ) -> dict[str, JsonValue]:
        inputs: dict[str, JsonValue] = {}
        for mapping in node.input_mappings:
            value: Any
            if mapping.source == "field":
                assert mapping.path is not None
                value = lookup(payload, mapping.path)
                if value is None or value == "":
                    raise DocumentError(f"field {mapping.path!r} is missing")
            elif mapping.source == "vector":
                if vector is None:
                    raise DocumentError(f"no stored vector of {mapping.feature_uri}")
                value = [float(x) for x in vector]
            else:
                value = parent_label
            inputs[mapping.input_key] = value
        return inputs

    async def _match(
        self,
        node: TaxonomyNode,
        payload: Mapping[str, Any],
        vector: Sequence[float] | None,
        parent_label: str | None,
    ) -> Match | None:
        inputs = self._inputs(node, payload, vector, parent_label)
        async with self._gate:
            result = await self.retrieval.execute(
                self.namespace_id, node.retriever_id, inputs, limit=self.top_k
            )
        for row in result["results"]:
            reference = row.get("payload") or {}
            label = lookup(reference, node.label_field)
            score = float(row.get("score", 0.0))
            if not isinstance(label, str) or not label:
                continue
            if self.min_score is not None and score < self.min_score:
                return None  # results are best first: nothing after scores higher
            if node.parent_node_id is not None and lookup(reference, node.parent_field) != (
                parent_label
            ):
                continue
            return Match(label, score, reference)
        return None
