"""A static embedding model distilled from the local MiniLM with model2vec: the cheap model.

Distillation runs MiniLM once over its vocabulary (about 20 s on 2 cores), reduces the token
vectors to 256 dimensions with PCA and weights them (SIF); embedding a text is then a mean of
token vectors (in float32), about 1,500-2,500 abstracts/s. It is built once into the model cache, in a directory
named after everything that decides its vectors (model2vec version, distillation settings,
teacher), so an upgrade builds a new model instead of reusing a stale one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from libs.extractors.base import DenseEmbedding, Embedding, ModelUnavailableError, Role
from libs.extractors.model_cache import build_once, model_cache_dir
from libs.extractors.transformer import available_cores, quiet_transformers

DIMENSIONS = 256
_SIF_COEFFICIENT = 1e-4
_QUANTIZE_TO = "float16"
_POOLING = "mean"
_TOKEN_REMOVE_PATTERN = r"\[unused\d+\]"
INFERENCE_DTYPE = "float32"
DISTILL_SETTINGS: dict[str, JsonValue] = {
    "pca_dims": DIMENSIONS,
    "sif_coefficient": _SIF_COEFFICIENT,
    "quantize_to": _QUANTIZE_TO,
    "pooling": _POOLING,
    "token_remove_pattern": _TOKEN_REMOVE_PATTERN,
}


def build_descriptor(teacher: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """What decides the distilled files (hashed into the model's directory name); inference
    settings are not in it, so changing them does not distil again."""
    return {"teacher": dict(teacher), "distiller": distiller(), "distillation": DISTILL_SETTINGS}


def distiller() -> str:
    """The installed model2vec, e.g. ``model2vec==0.10.0`` (part of the config hash)."""
    try:
        return f"model2vec=={metadata.version('model2vec')}"
    except metadata.PackageNotFoundError:
        return "model2vec (not installed)"


@dataclass(frozen=True, slots=True)
class _Loaded:
    model: Any  # model2vec.StaticModel (untyped library)


class StaticEncoder:
    """Distils on first use (or loads the cached model); then embeds by averaging.

    ``teacher`` returns the local MiniLM directory; ``build_key`` (a hash of
    ``build_descriptor``) names the cached model; ``cache_dir`` defaults to ``model_cache_dir()``
    read when the model is first needed.
    """

    def __init__(
        self, teacher: Callable[[], Path], build_key: str, cache_dir: Path | None = None
    ) -> None:
        self._teacher = teacher
        self._build_key = build_key
        self._cache_dir = cache_dir
        self._loaded: _Loaded | None = None
        self._distilled = False
        self._lock = threading.Lock()

    @property
    def model_dir(self) -> Path:
        return (self._cache_dir or model_cache_dir()) / f"minilm-static-{self._build_key[:16]}"

    @property
    def distilled(self) -> bool:
        """Whether this instance ran the distillation (False when it found the model built)."""
        return self._distilled

    def load(self) -> None:
        """Build (if needed) and load now rather than on the first ``encode``."""
        self._model()

    def encode(self, texts: Sequence[str], role: Role) -> list[Embedding]:
        """Unit vectors. No token limit: a mean of token vectors has no positions to run out
        of, so nothing is truncated. A text with no known token gets the zero vector."""
        model = self._model().model
        with self._lock:  # encode sets and restores the tokenizer's truncation: one at a time
            raw = model.encode(list(texts), max_length=None, use_multiprocessing=False)
        vectors = np.asarray(raw, dtype=np.float32).reshape(len(texts), DIMENSIONS)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return [DenseEmbedding(values=vector) for vector in unit]

    def _model(self) -> _Loaded:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def _load(self) -> _Loaded:
        teacher = self._teacher()
        if not teacher.is_dir():  # distill would take a missing path for a hub name
            raise ModelUnavailableError(f"the teacher model directory {teacher} is missing")
        self._distilled = build_once(self.model_dir, lambda staging: _distill(teacher, staging))
        from model2vec import StaticModel

        model = StaticModel.from_pretrained(self.model_dir, normalize=True)
        # Stored as float16 (half the disk); averaged in float32: faster in numpy, more precise.
        model.embedding = np.asarray(model.embedding, dtype=np.float32)
        return _Loaded(model=model)


def _distill(teacher: Path, destination: Path) -> None:
    """Distil from local files only: a local path never reaches the hub, and offline mode
    makes sure nothing else does."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from model2vec.distill import distill

    torch.set_num_threads(available_cores())
    with quiet_transformers():
        model = distill(
            model_name=str(teacher),
            device="cpu",
            pca_dims=DIMENSIONS,
            sif_coefficient=_SIF_COEFFICIENT,
            quantize_to=_QUANTIZE_TO,
            pooling=_POOLING,
            token_remove_pattern=_TOKEN_REMOVE_PATTERN,
        )
    model.save_pretrained(destination)
