"""Sentence-transformers models (MiniLM, MPNet) run with torch + transformers directly.

The recipe is the one sentence-transformers applies for these models: the model's own
tokenizer, truncation at ``max_seq_length``, mean pooling of the last hidden states over the
attention mask, then L2 normalisation; the tests hold it to the reference library within 1e-5.
Doing it here keeps sentence-transformers a development dependency and lets us batch for
throughput: texts are sorted by length (less padding), a background thread tokenises the next
batch while the model runs, and torch uses every core this process may run on.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer  # type: ignore[import-untyped]

from libs.extractors.base import DenseEmbedding, Embedding, ModelUnavailableError, Role

if TYPE_CHECKING:  # torch takes seconds to import: only code that runs a model pays for it
    import torch


@dataclass(frozen=True, slots=True)
class TransformerSpec:
    """What the registry declares about a model before loading it; checked against its files."""

    dimensions: int
    max_tokens: int
    batch_size: int = 32


@dataclass(frozen=True, slots=True)
class _TokenizedBatch:
    positions: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    truncated: list[bool]


@dataclass(frozen=True, slots=True)
class _LoadedModel:
    tokenizer: Tokenizer
    network: Any  # a transformers PreTrainedModel (untyped library)


class TransformerEncoder:
    """A lazily loaded sentence-transformers model; one instance per model per process.

    ``locate`` returns the model directory (it may build it first, as mpnet's assembly does).
    """

    def __init__(self, locate: Callable[[], Path], spec: TransformerSpec) -> None:
        self._locate = locate
        self._spec = spec
        self._loaded: _LoadedModel | None = None
        self._lock = threading.Lock()

    @property
    def spec(self) -> TransformerSpec:
        return self._spec

    def load(self) -> None:
        """Load now rather than on the first ``encode`` (idempotent)."""
        self._model()

    def encode(self, texts: Sequence[str], role: Role) -> list[Embedding]:
        """Dense unit vectors; ``role`` is ignored (these models embed queries like documents)."""
        model = self._model()
        longest_first = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        size = self._spec.batch_size
        batches = [longest_first[i : i + size] for i in range(0, len(longest_first), size)]
        results: list[Embedding | None] = [None] * len(texts)
        with self._lock:  # one batch at a time: torch already uses every core
            for batch in _prefetched(model.tokenizer, texts, batches):
                vectors = _pool_and_normalise(model.network, batch)
                for position, vector, truncated in zip(
                    batch.positions, vectors, batch.truncated, strict=True
                ):
                    results[position] = DenseEmbedding(values=vector, truncated=truncated)
        return [embedding for embedding in results if embedding is not None]

    def _model(self) -> _LoadedModel:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def _load(self) -> _LoadedModel:
        directory = self._locate()
        _check_model_files(directory, self._spec)
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        pad_id, pad_token = _padding_token(tokenizer, directory)
        tokenizer.enable_truncation(max_length=self._spec.max_tokens)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the batch's longest
        import torch

        torch.set_num_threads(available_cores())
        with quiet_transformers():
            from transformers import AutoModel

            network = AutoModel.from_pretrained(directory, local_files_only=True)
        network.eval()
        return _LoadedModel(tokenizer=tokenizer, network=network)


def available_cores() -> int:
    """The cores this process may run on (its affinity), not the machine's total."""
    return len(os.sched_getaffinity(0)) or 1


def _prefetched(
    tokenizer: Tokenizer, texts: Sequence[str], batches: list[list[int]]
) -> Iterator[_TokenizedBatch]:
    """Yield tokenised batches, tokenising batch k+1 in a thread while the caller runs batch k
    (the tokenizers library and torch both release the GIL)."""
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as tokenizing:
        pending = tokenizing.submit(_tokenize, tokenizer, texts, batches[0])
        for following in [*batches[1:], None]:
            ready = pending.result()
            if following is not None:
                pending = tokenizing.submit(_tokenize, tokenizer, texts, following)
            yield ready


def _tokenize(tokenizer: Tokenizer, texts: Sequence[str], positions: list[int]) -> _TokenizedBatch:
    import torch

    encodings: list[Encoding] = tokenizer.encode_batch([texts[i] for i in positions])
    return _TokenizedBatch(
        positions=positions,
        input_ids=torch.tensor([e.ids for e in encodings], dtype=torch.long),
        attention_mask=torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
        truncated=[bool(e.overflowing) for e in encodings],
    )


def _pool_and_normalise(network: Any, batch: _TokenizedBatch) -> NDArray[np.float32]:
    """Mean of the token states the attention mask keeps, scaled to unit length."""
    import torch

    with torch.inference_mode():
        states = network(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        weights = batch.attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        unit = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
    vectors: NDArray[np.float32] = unit.numpy().astype(np.float32, copy=False)
    return vectors


def _check_model_files(directory: Path, spec: TransformerSpec) -> None:
    """Refuse files that disagree with the registry (another pooling, size or limit)."""
    try:
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
        limits = json.loads((directory / "sentence_bert_config.json").read_text())
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"model files in {directory} are incomplete: {error}") from None
    expected = {
        "pooling_mode_mean_tokens": True,
        "word_embedding_dimension": spec.dimensions,
    }
    found = {key: pooling.get(key) for key in expected}
    if found != expected or limits.get("max_seq_length") != spec.max_tokens:
        raise ModelUnavailableError(
            f"model files in {directory} do not match the registry: pooling {found}, "
            f"max_seq_length {limits.get('max_seq_length')}; expected {expected}, "
            f"max_seq_length {spec.max_tokens}"
        )


def _padding_token(tokenizer: Tokenizer, directory: Path) -> tuple[int, str]:
    """The pad token the model was trained with: from tokenizer.json, else config.json."""
    padding = tokenizer.padding
    if padding is not None:
        return int(padding["pad_id"]), str(padding["pad_token"])
    pad_id = int(json.loads((directory / "config.json").read_text()).get("pad_token_id", 0))
    token = tokenizer.id_to_token(pad_id)
    if token is None:
        raise ModelUnavailableError(f"the tokenizer in {directory} has no pad token {pad_id}")
    return pad_id, token


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars while loading local files."""
    from transformers.utils import logging as untyped_logging

    transformers_logging: Any = untyped_logging
    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()
