"""The inference cache: repeated inputs never reach the model, across restarts too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from libs.errors import InvalidInputError
from libs.extractors import (
    CachedExtractor,
    ConfiguredExtractor,
    DenseEmbedding,
    Embedding,
    FeatureExtractor,
    InferenceCache,
    SparseEmbedding,
    get_extractor,
)
from libs.extractors.model_cache import CACHE_ENV

TEXTS = ["Vitamin D and fractures.", "p53 in tumours.", "A text over the limit. " * 200]


def _same(left: list[Embedding], right: list[Embedding]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert type(a) is type(b) and a.truncated == b.truncated
        np.testing.assert_array_equal(a.values, b.values)
        if isinstance(a, SparseEmbedding) and isinstance(b, SparseEmbedding):
            np.testing.assert_array_equal(a.indices, b.indices)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[InferenceCache]:
    with InferenceCache(tmp_path / "inference.sqlite3") as opened:
        yield opened


def test_a_second_identical_batch_runs_the_model_zero_times(
    minilm: ConfiguredExtractor, cache: InferenceCache
) -> None:
    cached = CachedExtractor(minilm, cache)
    before = minilm.stats
    first = cached.embed(TEXTS)
    after_first = minilm.stats
    assert (after_first.calls - before.calls, after_first.texts - before.texts) == (1, 3)
    second = cached.embed(TEXTS)
    assert minilm.stats == after_first
    _same(first, second)
    assert first[2].truncated and second[2].truncated
    assert (cached.cache_stats.hits, cached.cache_stats.misses) == (3, 3)
    assert cached.cache_stats.hit_ratio == 0.5


def test_only_the_missing_texts_are_encoded(
    minilm: ConfiguredExtractor, cache: InferenceCache
) -> None:
    cached = CachedExtractor(minilm, cache)
    cached.embed(TEXTS[:2])
    before = minilm.stats
    mixed = cached.embed([TEXTS[1], "something new", TEXTS[0], "something new"])
    assert minilm.stats.texts - before.texts == 1  # the duplicate is encoded once
    _same([mixed[1]], [mixed[3]])
    _same([mixed[0], mixed[2]], minilm.embed([TEXTS[1], TEXTS[0]]))


def test_the_cache_survives_a_restart(bm25: ConfiguredExtractor, tmp_path: Path) -> None:
    path = tmp_path / "inference.sqlite3"
    with InferenceCache(path) as first_process:
        stored = CachedExtractor(bm25, first_process).embed(TEXTS)
    before = bm25.stats
    with InferenceCache(path) as second_process:
        reopened = CachedExtractor(bm25, second_process)
        _same(reopened.embed(TEXTS), stored)
        assert reopened.cache_stats.hit_ratio == 1.0
        assert second_process.count() == 3
    assert bm25.stats == before


def test_dense_vectors_round_trip_as_float32(
    static_model: ConfiguredExtractor, cache: InferenceCache
) -> None:
    computed = CachedExtractor(static_model, cache).embed(TEXTS)
    loaded = CachedExtractor(static_model, cache).embed(TEXTS)
    _same(loaded, computed)
    assert all(isinstance(e, DenseEmbedding) and e.values.dtype == np.float32 for e in loaded)


def test_queries_and_documents_are_cached_apart(
    bm25: ConfiguredExtractor, cache: InferenceCache
) -> None:
    cached = CachedExtractor(bm25, cache)
    document = cached.embed(["cats chase cats"])[0]
    query = cached.embed(["cats chase cats"], role="query")[0]
    assert query.values.tolist() == [1.0, 1.0]
    assert document.values.tolist() != [1.0, 1.0]


def test_a_changed_parameter_misses_but_changed_chunking_hits(cache: InferenceCache) -> None:
    base = get_extractor("bm25", "v1")
    CachedExtractor(base, cache).embed(TEXTS)

    rescored = get_extractor("bm25", "v1", {"k1": 1.5})
    before = rescored.stats
    CachedExtractor(rescored, cache).embed(TEXTS)
    assert rescored.stats.texts - before.texts == 3

    rechunked = get_extractor("bm25", "v1", {"chunking": {"mode": "words", "size": 50}})
    before = rechunked.stats
    CachedExtractor(rechunked, cache).embed(TEXTS)
    assert rechunked.stats == before


def test_the_cache_is_a_file_of_float32_bytes(bm25: ConfiguredExtractor, tmp_path: Path) -> None:
    path = tmp_path / "inference.sqlite3"
    with InferenceCache(path) as cache:
        (vector,) = CachedExtractor(bm25, cache).embed(["cats chase mice"])
    assert isinstance(vector, SparseEmbedding)
    with sqlite3.connect(path) as db:
        values, indices = db.execute("SELECT vector, indices FROM embeddings").fetchone()
    assert values == vector.values.astype("<f4").tobytes()
    assert indices == vector.indices.astype("<u4").tobytes()


def test_the_default_cache_lives_in_the_model_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "models"))
    with InferenceCache.open_default() as cache:
        assert cache.path == tmp_path / "models" / "inference-cache.sqlite3"
        assert cache.path.is_file()


def test_a_cached_extractor_is_an_extractor(
    bm25: ConfiguredExtractor, cache: InferenceCache
) -> None:
    cached = CachedExtractor(bm25, cache)
    assert isinstance(cached, FeatureExtractor)
    assert cached.info == bm25.info
    assert len(cached.embed(text for text in TEXTS)) == 3  # an iterator is read once
    assert cached.embed([]) == []
    with pytest.raises(InvalidInputError):
        cached.embed("one text")
    with pytest.raises(InvalidInputError):
        cached.embed([b"bytes"])  # type: ignore[list-item]


def test_threads_share_one_cache(bm25: ConfiguredExtractor, cache: InferenceCache) -> None:
    cached = CachedExtractor(bm25, cache)
    batches = [[f"text {n % 7}", f"other {n % 3}", TEXTS[n % 3]] for n in range(24)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(cached.embed, batches))
    for batch, embeddings in zip(batches, results, strict=True):
        _same(embeddings, bm25.embed(batch))
    assert cache.count() == 7 + 3 + 3
