"""MiniLM and MPNet equal sentence-transformers' vectors (fixture) and flag truncation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from libs.errors import InvalidInputError
from libs.extractors import ConfiguredExtractor, DenseEmbedding, Embedding

LONG_TEXT = "The cohort was followed for cardiovascular outcomes over ten years. " * 40


def _matrix(embeddings: list[Embedding]) -> np.ndarray:
    assert all(isinstance(e, DenseEmbedding) for e in embeddings)
    return np.stack([e.values for e in embeddings if isinstance(e, DenseEmbedding)])


def test_minilm_equals_sentence_transformers(
    minilm: ConfiguredExtractor, reference: dict[str, Any]
) -> None:
    expected = np.asarray(reference["minilm@v1"]["vectors"], dtype=np.float32)
    vectors = _matrix(minilm.embed(reference["minilm@v1"]["texts"]))
    assert vectors.shape == (len(expected), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)


def test_minilm_vectors_are_unit_length(minilm: ConfiguredExtractor) -> None:
    vectors = _matrix(minilm.embed(["a short query", "", LONG_TEXT]))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_minilm_is_semantically_sensible(minilm: ConfiguredExtractor) -> None:
    heart, infarction, tax = _matrix(
        minilm.embed(["heart attack", "myocardial infarction", "corporate tax law"])
    )
    assert float(heart @ infarction) > float(heart @ tax) + 0.2


def test_a_text_over_the_limit_is_truncated_and_flagged(minilm: ConfiguredExtractor) -> None:
    long, other_ending, short = minilm.embed(
        [LONG_TEXT + "Birds sing.", LONG_TEXT + "Corporate tax law changed.", "fits easily"]
    )
    assert long.truncated and other_ending.truncated and not short.truncated
    # The model read only the first 256 tokens, which the two long texts share.
    np.testing.assert_allclose(long.values, other_ending.values, atol=1e-6)


def test_order_is_kept_whatever_the_batching(minilm: ConfiguredExtractor) -> None:
    texts = [f"sentence number {n} " * (1 + n % 7) for n in range(40)]
    together = _matrix(minilm.embed(texts))
    one_by_one = np.stack([_matrix(minilm.embed([text]))[0] for text in texts[:5]])
    np.testing.assert_allclose(together[:5], one_by_one, atol=1e-5)
    assert _matrix(minilm.embed([texts[3], texts[3]])).shape == (2, 384)


def test_queries_embed_like_documents(minilm: ConfiguredExtractor) -> None:
    (document,) = _matrix(minilm.embed(["vitamin d and bones"], role="document"))
    (query,) = _matrix(minilm.embed(["vitamin d and bones"], role="query"))
    np.testing.assert_allclose(document, query, atol=1e-6)


def test_bad_input_is_the_callers_mistake(minilm: ConfiguredExtractor) -> None:
    before = minilm.stats
    with pytest.raises(InvalidInputError, match="not a single string"):
        minilm.embed("one text")
    with pytest.raises(InvalidInputError, match="text 1 is a int"):
        minilm.embed(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="role"):
        minilm.embed(["fine"], role="passage")  # type: ignore[arg-type]
    assert minilm.embed([]) == []
    assert minilm.stats == before


def test_mpnet_equals_sentence_transformers(
    mpnet: ConfiguredExtractor, reference: dict[str, Any]
) -> None:
    if "mpnet@v1" not in reference:
        pytest.skip("the fixture has no mpnet vectors: rerun tests/extractors/make_fixtures.py")
    expected = np.asarray(reference["mpnet@v1"]["vectors"], dtype=np.float32)
    vectors = _matrix(mpnet.embed(reference["mpnet@v1"]["texts"]))
    assert vectors.shape == (2, 768)
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
