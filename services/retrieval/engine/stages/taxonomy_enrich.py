"""``taxonomy_enrich``: label the results at query time with a taxonomy (nothing is stored).

The engine is pure over its ports and does not know taxonomies; the taxonomy service plugs its
labelling in with ``install(enricher)`` when the runtime starts it. The fields added to each
candidate's payload are the ones ``apply`` would write (``<output_field>``, ``_score``,
``_path``, enrichment fields), so a query-time label equals the stored one. Candidates keep
their order and scores. Without the service installed the stage fails with a clear error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import Field

from libs.errors import InvalidInputError
from services.retrieval.engine.models import Candidate
from services.retrieval.engine.stages.base import REGISTRY, RunContext, Stage, StageParameters

__all__ = ["TaxonomyEnrich", "TaxonomyEnrichParameters", "install"]

Enricher = Callable[[str, Sequence[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
_enricher: list[Enricher] = []


def install(enricher: Enricher) -> None:
    """Plug the taxonomy service in (the last one installed serves)."""
    _enricher[:] = [enricher]


class TaxonomyEnrichParameters(StageParameters):
    taxonomy_id: str = Field(min_length=1, description="The taxonomy that labels the results.")
    top_n: int = Field(default=50, ge=1, le=1000, description="How many results to label.")


@REGISTRY.register
class TaxonomyEnrich(Stage[TaxonomyEnrichParameters]):
    stage_id: ClassVar[str] = "taxonomy_enrich"
    stage_type = "sort"
    description: ClassVar[str] = (
        "Label each result with a taxonomy at query time (fields as apply writes them)."
    )
    parameters_model = TaxonomyEnrichParameters

    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        if not _enricher:
            raise InvalidInputError(f"stage {self.name!r}: the taxonomy service is not running")
        head, tail = candidates[: self.parameters.top_n], candidates[self.parameters.top_n :]
        payloads = [dict(c.payload) for c in head]
        fields = await _enricher[0](self.parameters.taxonomy_id, payloads)
        enriched = [
            replace(c, payload={**c.payload, **{k: v for k, v in f.items() if v is not None}})
            for c, f in zip(head, fields, strict=True)
        ]
        return enriched + tail
