"""Planning: every mistake is found before anything runs, and names the stage and the field.
Also the stage listing (with JSON Schemas) and ``explain``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from libs.errors import InvalidInputError, NotFoundError
from services.retrieval.engine import RetrievalEngine, RetrieverDefinition, StageSpec
from tests.retrieval_engine.conftest import BM25, MINILM, STATIC, search, stage

Make = Callable[..., RetrieverDefinition]
MPNET = "offshoot://mpnet@v1/text_embedding"


def test_every_stage_is_listed_with_its_schema(engine: RetrievalEngine) -> None:
    listed = {s.stage_id: s for s in engine.stages()}
    assert set(listed) == {
        "feature_search",
        "attribute_filter",
        "sort_relevance",
        "sort_attribute",
        "mmr",
        "rerank",
        "score_normalize",
        "limit",
        "sample",
        "deduplicate",
        "taxonomy_enrich",  # registered by services/retrieval/engine/stages/taxonomy_enrich.py
    }
    assert listed["feature_search"].stage_type == "filter"
    assert listed["mmr"].stage_type == "sort"
    assert listed["sample"].stage_type == "reduce"
    schema = listed["feature_search"].parameters_schema
    assert schema["additionalProperties"] is False
    assert "searches" in schema["properties"]
    assert "lambda" in listed["mmr"].parameters_schema["properties"]


def _search_stage(**leg: Any) -> StageSpec:
    return stage("search", "feature_search", searches=[{**search(STATIC), **leg}])


BAD: list[tuple[str, list[StageSpec], type[Exception], str]] = [
    ("empty pipeline", [], InvalidInputError, r"stages: a retriever needs at least one stage"),
    (
        "unknown stage id",
        [stage("search", "feature_search", searches=[search()]), stage("x", "teleport", "sort")],
        NotFoundError,
        r"stage 'x': config.stage_id: unknown stage id 'teleport'; available: .*feature_search",
    ),
    (
        "negative top_k",
        [_search_stage(top_k=-5)],
        InvalidInputError,
        r"stage 'search' \(feature_search\): parameters: searches\[0\].top_k: Input should be greater than or equal to 1$",
    ),
    (
        "string top_k",
        [_search_stage(top_k="10")],
        InvalidInputError,
        r"'search' \(feature_search\): parameters: searches\[0\].top_k: .*valid integer",
    ),
    (
        "unknown parameter",
        [_search_stage(topk=3)],
        InvalidInputError,
        r"'search' \(feature_search\): parameters: searches\[0\].topk: Extra inputs",
    ),
    (
        "wrong fusion",
        [stage("search", "feature_search", searches=[search()], fusion="sum")],
        InvalidInputError,
        r"'search' \(feature_search\): parameters: fusion: ",
    ),
    (
        "mmr lambda type",
        [_search_stage(), stage("div", "mmr", "sort", **{"lambda": "high"})],
        InvalidInputError,
        r"'div' \(mmr\): parameters: lambda: ",
    ),
    (
        "limit must be positive",
        [_search_stage(), stage("cut", "limit", "reduce", limit=0)],
        InvalidInputError,
        r"'cut' \(limit\): parameters: limit: .*greater than or equal to 1",
    ),
    (
        "not starting with a filter",
        [stage("cut", "limit", "reduce", limit=3), _search_stage()],
        InvalidInputError,
        r"stage 'cut' \(limit\): stage_type: a pipeline starts with a filter stage",
    ),
    (
        "stage_type mismatch",
        [stage("search", "feature_search", "sort", searches=[search()])],
        InvalidInputError,
        r"'search' \(feature_search\): stage_type: feature_search is a filter stage, not sort",
    ),
    (
        "duplicate names",
        [_search_stage(), stage("search", "limit", "reduce", limit=3)],
        InvalidInputError,
        r"stage names must be unique, repeated: \['search'\]",
    ),
    (
        "template reads an undeclared input",
        [_search_stage(query="{{INPUT.question}}")],
        InvalidInputError,
        r"'search' \(feature_search\): searches\[0\].query: template reads input\(s\) "
        r"\['question'\] that the retriever's input_schema does not declare",
    ),
    (
        "template uses a filter",
        [_search_stage(query="{{INPUT.query | lower}}")],
        InvalidInputError,
        r"'search' \(feature_search\): searches\[0\].query: only \{\{INPUT.<name>\}\}",
    ),
    (
        "rerank template undeclared",
        [_search_stage(), stage("rr", "rerank", "sort", feature_uri=MINILM, query="{{INPUT.q}}")],
        InvalidInputError,
        r"'rr' \(rerank\): query: template reads input\(s\) \['q'\]",
    ),
    (
        "feature URI of another model",
        [_search_stage(feature_uri=MPNET)],
        InvalidInputError,
        r"'search' \(feature_search\): searches\[0\].feature_uri: offshoot://mpnet@v1/"
        r"text_embedding is not a vector space of the retriever's collections",
    ),
    (
        "malformed feature URI",
        [_search_stage(feature_uri="minilm")],
        InvalidInputError,
        r"searches\[0\].feature_uri: malformed feature URI",
    ),
    (
        "rerank with an unknown extractor",
        [_search_stage(), stage("rr", "rerank", "sort", feature_uri="offshoot://nope@v1/x")],
        InvalidInputError,
        r"'rr' \(rerank\): feature_uri: unknown feature extractor 'nope'",
    ),
    (
        "rerank with a sparse model",
        [_search_stage(), stage("rr", "rerank", "sort", feature_uri=BM25)],
        InvalidInputError,
        r"'rr' \(rerank\): feature_uri: .* is sparse",
    ),
    (
        "mmr over a sparse space",
        [_search_stage(), stage("div", "mmr", "sort", feature_uri=BM25)],
        InvalidInputError,
        r"'div' \(mmr\): feature_uri: .* is not a dense vector space",
    ),
    (
        "bad regex",
        [
            _search_stage(),
            stage("f", "attribute_filter", filter={"op": "regex", "field": "t", "pattern": "("}),
        ],
        InvalidInputError,
        r"'f' \(attribute_filter\): parameters: filter.pattern: Value error, invalid regular",
    ),
    (
        "filter missing op",
        [_search_stage(), stage("f", "attribute_filter", filter={"field": "year", "value": 3})],
        InvalidInputError,
        r"'f' \(attribute_filter\): parameters: filter: Unable to extract tag",
    ),
    (
        "dedupe by field without a field",
        [_search_stage(), stage("d", "deduplicate", "reduce", by="field")],
        InvalidInputError,
        r"'d' \(deduplicate\): parameters: .*by=field needs `field`",
    ),
    (
        "text query given a vector",
        [_search_stage(query=[0.1, 0.2])],
        InvalidInputError,
        r"searches\[0\].query: input_mode text takes a string",
    ),
]


@pytest.mark.parametrize(
    ("stages", "error", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_retrievers_are_refused_at_plan_time(
    engine: RetrievalEngine,
    retriever: Make,
    stages: list[StageSpec],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        engine.plan(retriever(*stages))


def test_retriever_without_collections_or_with_a_bad_schema(
    engine: RetrievalEngine, retriever: Make
) -> None:
    with pytest.raises(InvalidInputError, match="collections: a retriever needs"):
        engine.plan(retriever(_search_stage(), collections=()))
    with pytest.raises(InvalidInputError, match="input_schema: not a valid JSON Schema"):
        engine.plan(retriever(_search_stage(), input_schema={"type": "nope"}))


async def test_inputs_are_checked_against_the_schema(
    engine: RetrievalEngine, retriever: Make
) -> None:
    plan = engine.plan(retriever(_search_stage()))
    with pytest.raises(InvalidInputError, match=r"inputs: 'query' is a required property"):
        await engine.execute(plan, {})
    with pytest.raises(InvalidInputError, match=r"inputs\['year'\]: 'x' is not of type 'integer'"):
        await engine.execute(plan, {"query": "a", "year": "x"})


async def test_without_a_schema_a_missing_input_fails_at_run_time_naming_it(
    engine: RetrievalEngine, retriever: Make
) -> None:
    plan = engine.plan(retriever(_search_stage(), input_schema=None))
    with pytest.raises(
        InvalidInputError,
        match=r"'search' \(feature_search\): searches\[0\].query: missing input\(s\) \['query'\]",
    ):
        await engine.execute(plan, {"q": "a"})


def test_explain_shows_pushdown_and_vector_fetching_without_running(
    engine: RetrievalEngine, retriever: Make
) -> None:
    explained: Any = engine.explain(
        retriever(
            stage(
                "only_recent",
                "attribute_filter",
                filter={"op": "gte", "field": "year", "value": 2010},
            ),
            stage("search", "feature_search", searches=[search(STATIC), search(MINILM)]),
            stage(
                "title_has",
                "attribute_filter",
                filter={
                    "op": "and",
                    "filters": [
                        {"op": "contains", "field": "title", "value": "cell"},
                        {"op": "eq", "field": "group", "value": "g1"},
                    ],
                },
            ),
            stage("div", "mmr", "sort", **{"lambda": 0.6, "limit": 5}),
        )
    )
    stages = explained["stages"]
    names = [s["stage_name"] for s in stages]
    assert names == [
        "search",
        "only_recent",
        "title_has",
        "div",
    ]  # the filter moved into the search
    search_parameters = stages[0]["parameters"]
    assert search_parameters["pushed_filter"] == {
        "op": "and",
        "filters": [
            {"op": "gte", "field": "year", "value": 2010},
            {"op": "eq", "field": "group", "value": "g1"},
        ],
    }
    assert search_parameters["with_vectors"] == [STATIC]
    assert stages[1]["parameters"]["python_filter"] is None
    assert stages[2]["parameters"]["python_filter"] == {
        "op": "contains",
        "field": "title",
        "value": "cell",
        "case_sensitive": True,
    }
    assert stages[3]["parameters"]["feature_uri"] == STATIC
    assert explained["feature_uris"] == [STATIC, MINILM]
