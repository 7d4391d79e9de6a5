"""BM25 sparse vectors: text handling, stable ids, weights, and rankings computed by hand."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from libs.extractors import ConfiguredExtractor, SparseEmbedding, get_extractor
from libs.extractors.bm25 import idf, score

K1, B, AVGDL = 0.9, 0.4, 150.0


def _sparse(extractor: ConfiguredExtractor, text: str, role: str = "document") -> SparseEmbedding:
    (embedding,) = extractor.embed([text], role=role)  # type: ignore[arg-type]
    assert isinstance(embedding, SparseEmbedding)
    return embedding


def _id(extractor: ConfiguredExtractor, word: str) -> int:
    (token,) = _sparse(extractor, word, "query").indices.tolist()
    return int(token)


def _weight(tf: int, dl: int) -> float:
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / AVGDL))


def test_lower_cases_stems_and_drops_stop_words(bm25: ConfiguredExtractor) -> None:
    assert _id(bm25, "Running") == _id(bm25, "runs") == _id(bm25, "run")
    assert _id(bm25, "studies") == _id(bm25, "study")
    assert _id(bm25, "CATS") == _id(bm25, "cat")
    assert _id(bm25, "mice") != _id(bm25, "mouse")  # a stemmer, not a lemmatiser
    assert _sparse(bm25, "The and of is a").indices.size == 0
    assert _sparse(bm25, "").indices.size == 0


def test_token_ids_are_stable_hashes(bm25: ConfiguredExtractor) -> None:
    # |murmur3_32(stem, seed 0)| as signed int: the ids Qdrant and fastembed give too.
    assert {w: _id(bm25, w) for w in ("run", "cat", "chase", "mice")} == {
        "run": 243905464,
        "cat": 1751422759,
        "chase": 1467338681,
        "mice": 411292278,
    }


def test_document_weights_saturate_term_frequency(bm25: ConfiguredExtractor) -> None:
    vector = _sparse(bm25, "Cats chase mice. The cats run.")  # cat x2, chase, mice, run: dl 5
    weights = dict(zip(vector.indices.tolist(), vector.values.tolist(), strict=True))
    assert weights == pytest.approx(
        {
            _id(bm25, "cat"): _weight(2, 5),
            _id(bm25, "chase"): _weight(1, 5),
            _id(bm25, "mice"): _weight(1, 5),
            _id(bm25, "run"): _weight(1, 5),
        },
        rel=1e-6,
    )
    assert vector.indices.dtype == np.uint32 and vector.values.dtype == np.float32
    assert list(vector.indices) == sorted(set(vector.indices.tolist()))


def test_query_terms_weigh_one_each(bm25: ConfiguredExtractor) -> None:
    query = _sparse(bm25, "cat cats CAT chasing", "query")
    assert sorted(query.indices.tolist()) == sorted([_id(bm25, "cat"), _id(bm25, "chase")])
    assert query.values.tolist() == [1.0, 1.0]


def test_parameters_change_document_weights(bm25: ConfiguredExtractor) -> None:
    text = "cats chase mice"
    classic = get_extractor("bm25", "v1", {"k1": 1.2, "b": 0.75, "avg_doc_length": 100})
    (default_weight,) = set(_sparse(bm25, text).values.tolist())
    (classic_weight,) = set(_sparse(classic, text).values.tolist())
    assert default_weight == pytest.approx(_weight(1, 3))
    assert classic_weight == pytest.approx(2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 100)))


def test_bm25_has_no_length_limit(bm25: ConfiguredExtractor) -> None:
    assert not _sparse(bm25, "protein folding " * 5000).truncated


CORPUS = [
    "Cats chase mice.",
    "Dogs chase cats, and the cats run away.",
    "The mouse ran away.",
    "Birds sing.",
]
# The same corpus tokenised by hand: lower-cased, stop words out, stemmed.
CORPUS_TOKENS = [
    ["cat", "chase", "mice"],
    ["dog", "chase", "cat", "cat", "run", "away"],
    ["mous", "ran", "away"],
    ["bird", "sing"],
]
QUERY_TOKENS = ["cat", "chase"]


def _hand_bm25() -> list[float]:
    documents = len(CORPUS_TOKENS)
    containing = Counter(token for tokens in CORPUS_TOKENS for token in set(tokens))
    scores = []
    for tokens in CORPUS_TOKENS:
        frequencies = Counter(tokens)
        total = 0.0
        for term in QUERY_TOKENS:
            if frequencies[term]:
                term_idf = math.log(
                    1 + (documents - containing[term] + 0.5) / (containing[term] + 0.5)
                )
                total += term_idf * _weight(frequencies[term], len(tokens))
        scores.append(total)
    return scores


def test_a_ranking_matches_hand_computed_bm25(bm25: ConfiguredExtractor) -> None:
    documents = bm25.embed(CORPUS)
    query = _sparse(bm25, "Cats chasing", "query")
    containing = Counter(
        token for d in documents if isinstance(d, SparseEmbedding) for token in d.indices.tolist()
    )
    idf_by_token = {token: idf(len(CORPUS), count) for token, count in containing.items()}
    scores = [score(query, d, idf_by_token) for d in documents if isinstance(d, SparseEmbedding)]
    expected = _hand_bm25()
    assert scores == pytest.approx(expected, rel=1e-6)
    assert np.argsort(scores)[::-1][:2].tolist() == [1, 0]


def test_qdrant_edge_with_the_idf_modifier_scores_the_same(
    bm25: ConfiguredExtractor, tmp_path: Path
) -> None:
    from qdrant_edge import (
        EdgeConfig,
        EdgeShard,
        EdgeSparseVectorParams,
        Modifier,
        Point,
        Query,
        QueryRequest,
        SparseVector,
        UpdateOperation,
    )

    def edge(vector: SparseEmbedding) -> SparseVector:
        return SparseVector(vector.indices.tolist(), vector.values.tolist())

    config = EdgeConfig(sparse_vectors={"bm25": EdgeSparseVectorParams(modifier=Modifier.Idf)})
    shard = EdgeShard.create(str(tmp_path / "shard"), config)
    try:
        points = [
            Point(number, {"bm25": edge(d)})
            for number, d in enumerate(bm25.embed(CORPUS))
            if isinstance(d, SparseEmbedding)
        ]
        shard.update(UpdateOperation.upsert_points(points))
        query = edge(_sparse(bm25, "Cats chasing", "query"))
        found = shard.query(QueryRequest(limit=10, query=Query.Nearest(query, using="bm25")))
    finally:
        shard.close()
    expected = _hand_bm25()
    assert [point.id for point in found] == [1, 0]
    assert [point.score for point in found] == pytest.approx([expected[1], expected[0]], rel=1e-5)
