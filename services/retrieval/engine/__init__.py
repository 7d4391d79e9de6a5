"""The retrieval engine: retrievers as validated stage pipelines over the vector-store and
extractor ports (the HTTP service wraps it).

Typical use::

    engine = RetrievalEngine(store=store, inference_cache=cache, signature=signature_of)
    plan = engine.plan(RetrieverDefinition(retriever_id=..., stages=..., collections=...,
                                           input_schema=...))   # validates everything
    plan.explain()                                              # without running
    result = await engine.execute(plan, {"query": "..."})       # ranked documents + reports
    engine.stages()                                             # GET /v1/retrievers/stages
"""

from services.retrieval.engine.cache import LruCache, SignatureFn, collection_signature
from services.retrieval.engine.fusion import (
    FusionMethod,
    Leg,
    dbsf,
    fuse,
    max_fusion,
    rrf,
    weighted,
)
from services.retrieval.engine.models import (
    CacheReport,
    Candidate,
    CollectionRef,
    ExecutionResult,
    RetrievedDocument,
    RetrieverDefinition,
    StageConfig,
    StageReport,
    StageSpec,
)
from services.retrieval.engine.pipeline import Plan, RetrievalEngine
from services.retrieval.engine.stages import REGISTRY, Stage, StageDescription, StageRegistry

__all__ = [
    "REGISTRY",
    "CacheReport",
    "Candidate",
    "CollectionRef",
    "ExecutionResult",
    "FusionMethod",
    "Leg",
    "LruCache",
    "Plan",
    "RetrievalEngine",
    "RetrievedDocument",
    "RetrieverDefinition",
    "SignatureFn",
    "Stage",
    "StageConfig",
    "StageDescription",
    "StageRegistry",
    "StageReport",
    "StageSpec",
    "collection_signature",
    "dbsf",
    "fuse",
    "max_fusion",
    "rrf",
    "weighted",
]
