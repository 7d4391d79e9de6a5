"""One extractor class for every model: parameters, chunking, input checks and call counting
around an ``Encoder``, the part that differs per model."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Protocol, get_args

from pydantic import BaseModel, ConfigDict

from libs.errors import InvalidInputError
from libs.extractors.base import Embedding, EncoderStats, ExtractorInfo, Role
from libs.extractors.chunking import Chunk, ChunkingOptions, NoChunking, chunk_text


class ExtractorParameters(BaseModel):
    """Parameters every text extractor takes; models with more subclass it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunking: ChunkingOptions = NoChunking()


class Encoder(Protocol):
    """Texts to vectors with a loaded (or lazily loading) model; no validation, no counting."""

    def encode(self, texts: Sequence[str], role: Role) -> list[Embedding]: ...


class ConfiguredExtractor:
    """A model with its parameters: what ``get_extractor`` returns (see ``FeatureExtractor``)."""

    def __init__(
        self, info: ExtractorInfo, parameters: ExtractorParameters, encoder: Encoder
    ) -> None:
        self._info = info
        self._parameters = parameters
        self._encoder = encoder
        self._stats = EncoderStats()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._info.feature_uri} {self._info.config_hash[:12]}>"

    @property
    def info(self) -> ExtractorInfo:
        return self._info

    @property
    def parameters(self) -> ExtractorParameters:
        return self._parameters

    @property
    def encoder(self) -> Encoder:
        """The loaded (or loading) model; shared by every configuration of the same model."""
        return self._encoder

    @property
    def stats(self) -> EncoderStats:
        return self._stats

    def chunk(self, text: str) -> list[Chunk]:
        """The chunks (future documents) of one object's text, as this extractor's options say."""
        return chunk_text(text, self._parameters.chunking)

    def embed(self, texts: Iterable[str], *, role: Role = "document") -> list[Embedding]:
        """One embedding per text, in order; see ``FeatureExtractor.embed``."""
        texts = _checked_texts(texts)
        if role not in get_args(Role):
            raise InvalidInputError(f"role must be 'document' or 'query', not {role!r}")
        if not texts:
            return []
        embeddings = self._encoder.encode(texts, role)
        with self._stats_lock:
            self._stats = EncoderStats(
                calls=self._stats.calls + 1, texts=self._stats.texts + len(texts)
            )
        return embeddings


def _checked_texts(texts: Iterable[str]) -> list[str]:
    """The texts as a list (an iterator is read once), or the caller's mistake named."""
    if isinstance(texts, str | bytes):
        raise InvalidInputError("embed takes a sequence of texts, not a single string")
    checked = list(texts)
    for position, text in enumerate(checked):
        if not isinstance(text, str):
            raise InvalidInputError(f"text {position} is a {type(text).__name__}, not a string")
    return checked
