"""Every stage, registered in ``REGISTRY`` on import (one module per stage family)."""

from services.retrieval.engine.stages import (
    attribute,
    mmr,
    reduce,
    rerank,
    search,
    sort,
    taxonomy_enrich,  # registers taxonomy_enrich
)
from services.retrieval.engine.stages.base import (
    REGISTRY,
    PlanContext,
    RunContext,
    Stage,
    StageDescription,
    StageParameters,
    StageRegistry,
)

__all__ = [
    "REGISTRY",
    "PlanContext",
    "RunContext",
    "Stage",
    "StageDescription",
    "StageParameters",
    "StageRegistry",
    "attribute",
    "mmr",
    "reduce",
    "rerank",
    "search",
    "sort",
    "taxonomy_enrich",
]
