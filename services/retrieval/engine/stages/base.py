"""The stage contract and the registry every stage is listed in.

A stage is a small class: a pydantic parameter model (strict, ``extra="forbid"``), plan-time
checks against the retriever's collections and inputs, and an async ``run`` over the candidate
list. Why classes with a registry rather than a big ``match``: ``GET /v1/retrievers/stages``
lists every stage with its JSON Schema straight from the registry, and a new stage is one new
module.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from libs.errors import InvalidInputError
from libs.extractors import Embedding, FeatureExtractor
from libs.vectors import DenseVector, SparseVector, VectorStore
from services.retrieval.engine.errors import stage_invalid, stage_not_found, validation_summary
from services.retrieval.engine.models import Candidate, CollectionRef, StageSpec, StageType
from services.retrieval.engine.stages.conditions import OPS
from services.retrieval.engine.templates import Template, compile_template, is_template, render

__all__ = [
    "REGISTRY",
    "PlanContext",
    "RunContext",
    "Stage",
    "StageDescription",
    "StageParameters",
    "StageRegistry",
    "fetch_vectors",
]


class StageParameters(BaseModel):
    """Base of every parameter model: frozen, unknown keys refused, no silent coercion
    (``"10"`` is not a ``top_k``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


P = TypeVar("P", bound=StageParameters)


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What plan-time checks may look at: the collections, the declared input names (``None``:
    the retriever declares no schema), and a way to resolve feature URIs to extractors."""

    collections: tuple[CollectionRef, ...]
    input_names: frozenset[str] | None
    extractor_for: Callable[[str], FeatureExtractor]
    searched_uris: tuple[str, ...] = ()

    def holding(self, feature_uri: str) -> list[CollectionRef]:
        return [c for c in self.collections if feature_uri in c.views]

    def held_uris(self) -> list[str]:
        return sorted({uri for c in self.collections for uri in c.views})


@dataclass(slots=True)
class RunContext:
    """What a running stage may use: the store, the request's inputs, embedding through the
    inference cache, and the stage-result cache (``None`` when caching is off)."""

    store: VectorStore
    inputs: Mapping[str, JsonValue]
    collections: tuple[CollectionRef, ...]
    embed_query: Callable[[str, str], Awaitable[Embedding]]
    embed_documents: Callable[[str, list[str]], Awaitable[list[Embedding]]]
    signatures: Mapping[str, str] | None
    stage_cache_get: Callable[[str], tuple[Candidate, ...] | None]
    stage_cache_put: Callable[[str, tuple[Candidate, ...]], None]
    stage_hits: dict[str, bool] = field(default_factory=dict)
    is_source: bool = False


class Stage(ABC, Generic[P]):
    """One configured stage of a plan. Subclasses set the class variables and ``run``."""

    stage_id: ClassVar[str]
    stage_type: ClassVar[StageType]
    description: ClassVar[str]
    parameters_model: ClassVar[type[StageParameters]]

    def __init__(self, name: str, parameters: P) -> None:
        self.name = name
        self.parameters = parameters

    @classmethod
    def normalize(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        """Rewrite accepted shorthands of the parameters into their canonical form."""
        return parameters

    def invalid(self, field: str, message: str) -> InvalidInputError:
        return stage_invalid(self.name, self.stage_id, field, message)

    def templates(self) -> list[tuple[str, str]]:
        """``(field, source)`` of every template parameter (checked at plan time)."""
        return []

    def check(self, context: PlanContext) -> None:
        """Plan-time checks beyond the parameter model (feature URIs, collections)."""

    def vectors_needed(self) -> set[str]:
        """Feature URIs whose stored vectors this stage reads (searches fetch them at once)."""
        return set()

    def explain(self) -> dict[str, JsonValue]:
        parameters: dict[str, JsonValue] = self.parameters.model_dump(mode="json", by_alias=True)
        return parameters

    def compiled(self, field: str, source: str) -> Template:
        try:
            return compile_template(source)
        except ValueError as error:
            raise self.invalid(field, str(error)) from None

    def render(self, field: str, value: str, inputs: Mapping[str, JsonValue]) -> JsonValue:
        """A parameter with its template filled in (plain strings come back unchanged)."""
        if not is_template(value):
            return value
        try:
            return render(self.compiled(field, value), inputs)
        except InvalidInputError as error:
            raise self.invalid(field, str(error)) from None

    @abstractmethod
    async def run(self, candidates: list[Candidate], context: RunContext) -> list[Candidate]:
        """The candidates after this stage, best first."""


class StageDescription(BaseModel):
    """One entry of ``GET /v1/retrievers/stages``."""

    model_config = ConfigDict(frozen=True)

    stage_id: str
    stage_type: StageType
    description: str
    parameters_schema: dict[str, Any]


class StageRegistry:
    """Stage classes by ``stage_id``; builds configured stages from ``StageSpec``s."""

    def __init__(self) -> None:
        self._stages: dict[str, type[Stage[Any]]] = {}

    def register(self, stage: type[Stage[Any]]) -> type[Stage[Any]]:
        if stage.stage_id in self._stages:
            raise ValueError(f"stage id {stage.stage_id!r} registered twice")
        self._stages[stage.stage_id] = stage
        return stage

    def ids(self) -> list[str]:
        return sorted(self._stages)

    def describe(self) -> list[StageDescription]:
        return [
            StageDescription(
                stage_id=s.stage_id,
                stage_type=s.stage_type,
                description=s.description,
                parameters_schema=s.parameters_model.model_json_schema(by_alias=True),
            )
            for _, s in sorted(self._stages.items())
        ]

    def build(self, spec: StageSpec) -> Stage[Any]:
        """A configured stage; unknown ids are ``NotFoundError``, bad parameters and a wrong
        ``stage_type`` are ``InvalidInputError`` naming the stage and the field."""
        stage_id = spec.config.stage_id
        cls = self._stages.get(stage_id)
        if cls is None:
            raise stage_not_found(spec.stage_name, stage_id, self.ids())
        if spec.stage_type != cls.stage_type:
            raise stage_invalid(
                spec.stage_name,
                stage_id,
                "stage_type",
                f"{stage_id} is a {cls.stage_type} stage, not {spec.stage_type}",
            )
        try:
            # Through JSON so strict mode still accepts arrays for tuples and objects for models.
            parameters = cls.parameters_model.model_validate_json(
                json.dumps(cls.normalize(dict(spec.config.parameters)))
            )
        except (TypeError, ValueError) as error:
            summary = (
                validation_summary(error, tags=OPS)
                if isinstance(error, ValidationError)
                else str(error)
            )
            raise stage_invalid(spec.stage_name, stage_id, "parameters", summary) from None
        return cls(spec.stage_name, parameters)


REGISTRY = StageRegistry()


async def fetch_vectors(
    candidates: Sequence[Candidate], feature_uri: str, context: RunContext
) -> list[Candidate]:
    """The candidates with their stored vector of ``feature_uri`` attached (read from each
    candidate's collection where a search did not already return it). Candidates whose
    collection lacks the space, or whose point is gone, come back without it."""
    from dataclasses import replace

    missing: dict[str, list[str]] = {}
    for candidate in candidates:
        if feature_uri not in candidate.vectors:
            missing.setdefault(candidate.collection_id, []).append(candidate.document_id)
    found: dict[tuple[str, str], DenseVector | SparseVector] = {}
    for collection in context.collections:
        ids = missing.get(collection.collection_id)
        view = collection.views.get(feature_uri)
        if not ids or view is None:
            continue
        for record in await context.store.get(view=view, document_ids=ids, with_vectors=True):
            if record.vector is not None:
                found[(collection.collection_id, record.document_id)] = record.vector
    result = []
    for candidate in candidates:
        vector = found.get((candidate.collection_id, candidate.document_id))
        if vector is not None:
            candidate = replace(candidate, vectors={**candidate.vectors, feature_uri: vector})
        result.append(candidate)
    return result
