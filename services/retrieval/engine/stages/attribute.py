"""``attribute_filter``: keep documents whose payload satisfies a condition tree.

Where it runs is decided by the planner, not the user: next to a ``feature_search`` (right
before it as the first stage, or right after it) its store-expressible conjuncts are pushed
down into the search's filter, so the search still returns ``top_k`` matching documents; as the
first stage on its own it scrolls the collections with the pushed filter; anywhere else it
filters the candidate list in Python. ``contains`` and ``regex`` always run in Python, on what
the store returned.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, JsonValue

from libs.vectors import filters as store
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import (
    REGISTRY,
    RunContext,
    Stage,
    StageParameters,
)
from services.retrieval.engine.stages.conditions import Condition, matches, split_pushable

__all__ = ["AttributeFilter", "AttributeFilterParameters"]

SCROLL_PAGE = 256


class AttributeFilterParameters(StageParameters):
    filter: Condition = Field(
        description="A condition tree: {op: eq|ne|gt|gte|lt|lte|in|nin|contains|exists|"
        "is_null|regex, field, value|values|pattern} nested with {op: and|or, filters: [...]} "
        "and {op: not, filter: {...}}."
    )
    limit: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Only when this is the pipeline's source: how many documents to read.",
    )


@REGISTRY.register
class AttributeFilter(Stage[AttributeFilterParameters]):
    stage_id: ClassVar[str] = "attribute_filter"
    stage_type = "filter"
    description: ClassVar[str] = (
        "Keep documents whose payload fields satisfy a condition (pushed down to the vector "
        "store when next to a search)."
    )
    parameters_model = AttributeFilterParameters

    def __init__(self, name: str, parameters: AttributeFilterParameters) -> None:
        super().__init__(name, parameters)
        self.pushable, self.python_part = split_pushable(parameters.filter)
        self.pushed_down = False

    def push_down(self) -> store.Filter | None:
        """Hand the store-expressible part to an adjacent search; keep the rest for Python."""
        self.pushed_down = self.pushable is not None
        return self.pushable

    @property
    def residual(self) -> Condition | None:
        return self.python_part if self.pushed_down else self.parameters.filter

    def explain(self) -> dict[str, JsonValue]:
        explained = super().explain()
        explained["pushed_down"] = self.pushed_down
        explained["python_filter"] = (
            None if self.residual is None else self.residual.model_dump(mode="json")
        )
        return explained

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        if context.is_source:
            return await self._scroll(context)
        residual = self.residual
        if residual is None:
            return candidates
        return [c for c in candidates if matches(residual, c.document_id, c.payload)]

    async def _scroll(self, context: RunContext) -> list[Candidate]:
        """The first ``limit`` matching documents, collection by collection (store order)."""
        found: list[Candidate] = []
        seen: set[str] = set()
        for collection in context.collections:
            view = next(iter(collection.views.values()))
            offset: str | None = None
            while len(found) < self.parameters.limit:
                page = await context.store.scroll(
                    view=view, filter=self.pushable, limit=SCROLL_PAGE, offset=offset
                )
                for point in page.points:
                    if point.document_id in seen or len(found) >= self.parameters.limit:
                        continue
                    if self.python_part is None or matches(
                        self.python_part, point.document_id, point.payload
                    ):
                        seen.add(point.document_id)
                        found.append(
                            Candidate(
                                document_id=point.document_id,
                                collection_id=collection.collection_id,
                                score=0.0,
                                payload=point.payload,
                            )
                        )
                offset = page.next_offset
                if offset is None:
                    break
        return found
