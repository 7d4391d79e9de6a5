"""Feature extractors: versioned models whose outputs are addressed by Feature URIs.

``list_extractors()`` says what exists; ``get_extractor(name, version, parameters)`` gives a
configured extractor whose model loads on first use; ``CachedExtractor`` puts the persistent
inference cache in front of one. Models load only from files installed by packages: this
package turns Hugging Face's offline mode on (unless the environment already says otherwise)
before anything imports the hub client.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from libs.extractors.base import (
    DenseEmbedding,
    Embedding,
    EncoderStats,
    ExtractorInfo,
    FeatureExtractor,
    FeatureUri,
    ModelUnavailableError,
    OutputSpec,
    Role,
    SparseEmbedding,
)
from libs.extractors.bm25 import Bm25Parameters
from libs.extractors.cache import CachedExtractor, CacheStats, InferenceCache
from libs.extractors.chunking import (
    Chunk,
    ChunkingOptions,
    NoChunking,
    SentenceChunking,
    WordChunking,
    chunk_text,
)
from libs.extractors.extractor import ConfiguredExtractor, ExtractorParameters
from libs.extractors.model_cache import model_cache_dir
from libs.extractors.registry import (
    extractor_for_uri,
    get_extractor,
    list_extractors,
)

__all__ = [
    "Bm25Parameters",
    "CacheStats",
    "CachedExtractor",
    "Chunk",
    "ChunkingOptions",
    "ConfiguredExtractor",
    "DenseEmbedding",
    "Embedding",
    "EncoderStats",
    "ExtractorInfo",
    "ExtractorParameters",
    "FeatureExtractor",
    "FeatureUri",
    "InferenceCache",
    "ModelUnavailableError",
    "NoChunking",
    "OutputSpec",
    "Role",
    "SentenceChunking",
    "SparseEmbedding",
    "WordChunking",
    "chunk_text",
    "extractor_for_uri",
    "get_extractor",
    "list_extractors",
    "model_cache_dir",
]
