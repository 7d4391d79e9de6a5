"""The distilled static model: 256-d unit vectors, deterministic, built once and reused."""

from __future__ import annotations

import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from libs.extractors import ConfiguredExtractor, DenseEmbedding, ModelUnavailableError
from libs.extractors.model_cache import build_once
from libs.extractors.registry import minilm_model_dir, static_build_key
from libs.extractors.static import StaticEncoder, build_descriptor


def _vectors(extractor: ConfiguredExtractor, texts: list[str]) -> np.ndarray:
    embeddings = extractor.embed(texts)
    return np.stack([e.values for e in embeddings if isinstance(e, DenseEmbedding)])


def test_static_vectors_are_256_d_and_unit_length(static_model: ConfiguredExtractor) -> None:
    vectors = _vectors(static_model, ["heart attack", "Myocardial infarction in the elderly."])
    assert vectors.shape == (2, 256)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_static_vectors_are_deterministic(static_model: ConfiguredExtractor) -> None:
    texts = ["p53 mutations in tumours", "bone density and vitamin D"]
    first = _vectors(static_model, texts)
    np.testing.assert_array_equal(first, _vectors(static_model, texts))
    np.testing.assert_array_equal(first[1], _vectors(static_model, texts[1:])[0])


def test_static_model_has_no_token_limit(static_model: ConfiguredExtractor) -> None:
    (long,) = static_model.embed(["cells " * 3000 + "tumour"])
    assert not long.truncated


def test_static_model_is_sensible(static_model: ConfiguredExtractor) -> None:
    cancer, tumour, tax = _vectors(
        static_model, ["cancer tumour growth", "malignant tumour cells", "corporate tax law"]
    )
    assert float(cancer @ tumour) > float(cancer @ tax)


def test_a_built_model_is_reused_not_distilled_again(static_model: ConfiguredExtractor) -> None:
    built = static_model.encoder
    assert isinstance(built, StaticEncoder)
    again = StaticEncoder(minilm_model_dir, build_key=static_build_key())
    assert again.model_dir == built.model_dir
    started = time.perf_counter()
    again.load()
    assert not again.distilled
    assert time.perf_counter() - started < 10  # distilling takes 20 s or more


def test_static_model_dir_is_named_by_what_decides_its_files(
    static_model: ConfiguredExtractor,
) -> None:
    encoder = static_model.encoder
    assert isinstance(encoder, StaticEncoder)
    assert encoder.model_dir.name == f"minilm-static-{static_build_key()[:16]}"
    assert (encoder.model_dir / "model.safetensors").is_file()
    descriptor = build_descriptor(static_model.info.model["teacher"])  # type: ignore[arg-type]
    assert descriptor["distiller"] == static_model.info.model["distiller"]


def test_a_missing_teacher_is_reported_not_looked_up_online(tmp_path: Path) -> None:
    encoder = StaticEncoder(lambda: tmp_path / "absent", build_key="0" * 64, cache_dir=tmp_path)
    with pytest.raises(ModelUnavailableError, match="teacher model directory"):
        encoder.load()
    assert not encoder.model_dir.exists()


def test_a_crashed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "models" / "some-model"

    def crash(staging: Path) -> None:
        (staging / "half-written.bin").write_bytes(b"\0" * 1024)
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError, match="killed mid-build"):
        build_once(target, crash)
    assert not target.exists()
    assert not list(target.parent.glob("*.building"))


def test_a_build_happens_once_and_stale_staging_is_cleared(tmp_path: Path) -> None:
    target = tmp_path / "model"
    stale = tmp_path / ".model.abc123.building"  # what a killed process leaves
    stale.mkdir()
    builds: list[Path] = []

    def build(staging: Path) -> None:
        builds.append(staging)
        (staging / "weights.bin").write_bytes(b"weights")

    assert build_once(target, build) is True
    assert build_once(target, build) is False
    assert len(builds) == 1
    assert (target / "weights.bin").read_bytes() == b"weights"
    assert not stale.exists()


def test_concurrent_calls_give_the_same_vectors(static_model: ConfiguredExtractor) -> None:
    texts = ["word " * 2000 + "ending", "a short one", "cells " * 900]
    expected = _vectors(static_model, texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: _vectors(static_model, texts), range(16)))
    for vectors in results:
        np.testing.assert_array_equal(vectors, expected)


@pytest.fixture
def tiny_teacher(tmp_path: Path) -> Path:
    """A 1-layer, 16-wide BERT with MiniLM's tokenizer: distils in seconds, the real way."""
    from transformers import BertConfig, BertModel

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_model_dir() / name, teacher / name)
    config = BertConfig(  # type: ignore[no-untyped-call]
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    BertModel(config).save_pretrained(teacher)  # type: ignore[no-untyped-call]
    return teacher


def test_distillation_runs_offline_into_the_cache_once(tiny_teacher: Path, tmp_path: Path) -> None:
    # The package's network guard is on: distilling must need no connection.
    cache = tmp_path / "cache"
    first = StaticEncoder(lambda: tiny_teacher, build_key="f" * 64, cache_dir=cache)
    first.load()
    assert first.distilled
    assert (first.model_dir / "model.safetensors").is_file()
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [
        first.model_dir.name
    ]
    second = StaticEncoder(lambda: tiny_teacher, build_key="f" * 64, cache_dir=cache)
    second.load()
    assert not second.distilled


def test_these_tests_run_offline() -> None:
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
