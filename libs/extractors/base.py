"""The feature-extractor port: what an extractor says about itself and what it returns.

An extractor is a versioned model plus its parameters. ``ExtractorInfo`` is what the registry
lists (and ``GET /v1/feature-extractors`` will serve); its ``config_hash`` is what change
detection compares, and its ``encoding_hash`` keys the inference cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from libs.errors import InfrastructureError, InvalidInputError
from libs.extractors.chunking import Chunk

Role = Literal["document", "query"]
"""Documents and queries may be encoded differently (BM25 weighs query terms 1 each)."""

NAME_PATTERN = r"[a-z0-9][a-z0-9_-]*"
VERSION_PATTERN = r"v[0-9]+"
OUTPUT_PATTERN = r"[a-z0-9][a-z0-9_]*"
_URI = re.compile(
    rf"offshoot://(?P<name>{NAME_PATTERN})@(?P<version>{VERSION_PATTERN})/(?P<output>{OUTPUT_PATTERN})"
)


class ModelUnavailableError(InfrastructureError):
    """A registered extractor's model files are not installed here; the message says how to."""


class FeatureUri(BaseModel):
    """``offshoot://<name>@<version>/<output>``: the address of one vector space, immutable."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=rf"^{NAME_PATTERN}$")
    version: str = Field(pattern=rf"^{VERSION_PATTERN}$")
    output: str = Field(pattern=rf"^{OUTPUT_PATTERN}$")

    @classmethod
    def parse(cls, uri: str) -> FeatureUri:
        """Split a URI into its parts; anything malformed is the caller's mistake."""
        if not isinstance(uri, str):
            raise InvalidInputError(f"a feature URI is a string, not {type(uri).__name__}")
        match = _URI.fullmatch(uri)
        if match is None:
            raise InvalidInputError(
                f"malformed feature URI {uri!r}: expected offshoot://<name>@<version>/<output>, "
                "e.g. offshoot://minilm@v1/text_embedding (lower-case name, version v<number>)"
            )
        return cls(**match.groupdict())

    def __str__(self) -> str:
        return f"offshoot://{self.name}@{self.version}/{self.output}"


class OutputSpec(BaseModel):
    """One output of an extractor and the vector space it defines (how Qdrant must index it)."""

    model_config = ConfigDict(frozen=True)

    name: str
    feature_uri: str
    kind: Literal["dense", "sparse"]
    dimensions: int | None = Field(description="Dense vector length; None for sparse vectors.")
    distance: Literal["cosine", "dot"]
    modifier: Literal["none", "idf"] = Field(
        default="none", description="'idf': the store multiplies by the corpus IDF (BM25)."
    )


class ExtractorInfo(BaseModel):
    """Everything a client needs to choose an extractor and detect a change of configuration."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    modality: Literal["text"]
    description: str
    outputs: tuple[OutputSpec, ...]
    model: dict[str, JsonValue] = Field(description="Model source, pooling, limits (hashed).")
    preprocessing: dict[str, JsonValue] = Field(description="Text handling before the model.")
    parameters: dict[str, JsonValue] = Field(description="Effective parameter values.")
    parameters_schema: dict[str, Any]
    config_hash: str = Field(description="sha256 of model, outputs, preprocessing, parameters.")
    encoding_hash: str = Field(
        description="sha256 of what decides one text's vector (all but chunking): the cache key."
    )

    @property
    def feature_uri(self) -> str:
        """The primary (first) output's URI: every extractor here has exactly one output."""
        return self.outputs[0].feature_uri


def stable_hash(document: Mapping[str, Any]) -> str:
    """sha256 of canonical JSON: the same configuration always gives the same hash."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DenseEmbedding:
    """A float32 vector; ``truncated`` says the model saw only the first part of the text."""

    values: NDArray[np.float32]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class SparseEmbedding:
    """Token ids (stable across processes) and their weights, for Qdrant sparse vectors."""

    indices: NDArray[np.uint32]
    values: NDArray[np.float32]
    truncated: bool = False


Embedding = DenseEmbedding | SparseEmbedding


@dataclass(frozen=True, slots=True)
class EncoderStats:
    """How often the model really ran: the inference cache's tests assert these stay put."""

    calls: int = 0
    texts: int = 0


@runtime_checkable
class FeatureExtractor(Protocol):
    """A configured extractor. Loading its model is lazy; ``embed`` may block for seconds."""

    @property
    def info(self) -> ExtractorInfo: ...

    @property
    def stats(self) -> EncoderStats:
        """Calls that reached the model and texts it encoded, since this process started."""
        ...

    def chunk(self, text: str) -> list[Chunk]:
        """Cut one object's text as the extractor's chunking parameters say."""
        ...

    def embed(self, texts: Iterable[str], *, role: Role = "document") -> list[Embedding]:
        """One embedding per text, in order. Texts over the model's limit come back truncated."""
        ...
