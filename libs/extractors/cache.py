"""The inference cache: a text already embedded by the same extractor is never embedded again.

Entries are keyed by (feature URI, encoding hash, role, sha256 of the text). The URI names the
vector space; the encoding hash covers everything else that decides a text's vector (model
files, parameters such as BM25's k1), so changing a parameter under the same URI can never
serve stale vectors, while chunking, which only decides which texts are embedded, is left out
and unchanged chunks still hit. One SQLite file (WAL) in the model cache directory is shared by
ingestion and query embedding, threads and processes, and survives restarts. Vectors are stored
as little-endian float32 bytes, sparse ones as uint32 indices plus float32 values.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from libs.errors import InfrastructureError
from libs.extractors.base import (
    DenseEmbedding,
    Embedding,
    EncoderStats,
    ExtractorInfo,
    FeatureExtractor,
    Role,
    SparseEmbedding,
)
from libs.extractors.chunking import Chunk
from libs.extractors.model_cache import model_cache_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    space_id      INTEGER PRIMARY KEY,
    feature_uri   TEXT NOT NULL,
    encoding_hash TEXT NOT NULL,
    UNIQUE (feature_uri, encoding_hash)
);
CREATE TABLE IF NOT EXISTS embeddings (
    space_id     INTEGER NOT NULL REFERENCES spaces (space_id),
    role         TEXT NOT NULL CHECK (role IN ('document', 'query')),
    content_hash BLOB NOT NULL,
    truncated    INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    indices      BLOB,
    PRIMARY KEY (space_id, role, content_hash)
) WITHOUT ROWID;
"""
_LOOKUP_BATCH = 500  # well under SQLite's bound-parameter limit


def content_hash(text: str) -> bytes:
    """sha256 of the UTF-8 text: the cache's notion of "the same input"."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Lookups answered from the cache (hits) or sent to the model (misses)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class InferenceCache:
    """The SQLite store behind ``CachedExtractor``; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._spaces: dict[tuple[str, str], int] = {}
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise InfrastructureError(f"cannot open the inference cache {path}: {error}") from None

    @classmethod
    def open_default(cls) -> InferenceCache:
        """The machine's cache, ``inference-cache.sqlite3`` in the model cache directory."""
        return cls(model_cache_dir() / "inference-cache.sqlite3")

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> InferenceCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get_many(
        self, info: ExtractorInfo, role: Role, hashes: Sequence[bytes]
    ) -> dict[bytes, Embedding]:
        """The stored embeddings among ``hashes`` (absent ones are simply missing)."""
        found: dict[bytes, Embedding] = {}
        with self._guarded():
            space = self._space_id(info)
            for start in range(0, len(hashes), _LOOKUP_BATCH):
                batch = list(dict.fromkeys(hashes[start : start + _LOOKUP_BATCH]))
                rows = self._db.execute(
                    "SELECT content_hash, truncated, vector, indices FROM embeddings "
                    f"WHERE space_id = ? AND role = ? AND content_hash IN ({_marks(len(batch))})",
                    [space, role, *batch],
                )
                for key, truncated, vector, indices in rows:
                    found[key] = _decode(bool(truncated), vector, indices)
        return found

    def put_many(
        self, info: ExtractorInfo, role: Role, entries: Sequence[tuple[bytes, Embedding]]
    ) -> None:
        """Store embeddings in one transaction; a key already present keeps its first value."""
        with self._guarded():
            space = self._space_id(info)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO embeddings "
                    "(space_id, role, content_hash, truncated, vector, indices) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(space, role, key, *_encode(embedding)) for key, embedding in entries],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def count(self) -> int:
        """Stored embeddings, all spaces together."""
        with self._guarded():
            (total,) = self._db.execute("SELECT count(*) FROM embeddings").fetchone()
        return int(total)

    def _space_id(self, info: ExtractorInfo) -> int:
        key = (info.feature_uri, info.encoding_hash)
        if key not in self._spaces:
            self._db.execute(
                "INSERT OR IGNORE INTO spaces (feature_uri, encoding_hash) VALUES (?, ?)", key
            )
            (space,) = self._db.execute(
                "SELECT space_id FROM spaces WHERE feature_uri = ? AND encoding_hash = ?", key
            ).fetchone()
            self._spaces[key] = int(space)
        return self._spaces[key]

    def _guarded(self) -> _Guard:
        return _Guard(self._lock, self._path)


class _Guard:
    """Serialise use of the connection and translate SQLite failures into our errors."""

    def __init__(self, lock: threading.Lock, path: Path) -> None:
        self._lock = lock
        self._path = path

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()
        if isinstance(error, sqlite3.Error):
            raise InfrastructureError(f"inference cache {self._path}: {error}") from error


class CachedExtractor:
    """An extractor behind the inference cache: same interface, misses go to the model.

    Duplicate texts within one call are embedded once. ``stats`` are the wrapped extractor's
    (model calls and texts really encoded); ``cache_stats`` count hits and misses.
    """

    def __init__(self, extractor: FeatureExtractor, cache: InferenceCache) -> None:
        self._extractor = extractor
        self._cache = cache
        self._cache_stats = CacheStats()
        self._stats_lock = threading.Lock()

    @property
    def info(self) -> ExtractorInfo:
        return self._extractor.info

    @property
    def stats(self) -> EncoderStats:
        return self._extractor.stats

    @property
    def cache_stats(self) -> CacheStats:
        return self._cache_stats

    def chunk(self, text: str) -> list[Chunk]:
        return self._extractor.chunk(text)

    def embed(self, texts: Iterable[str], *, role: Role = "document") -> list[Embedding]:
        """Cached embeddings where present; the rest from the model, then stored."""
        texts = texts if isinstance(texts, str | bytes) else list(texts)
        if isinstance(texts, str | bytes) or not all(isinstance(text, str) for text in texts):
            return self._extractor.embed(texts, role=role)  # let the extractor reject it
        keys = [content_hash(text) for text in texts]
        info = self._extractor.info
        known = self._cache.get_many(info, role, keys)
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
        if missing:
            computed = self._extractor.embed(list(missing.values()), role=role)
            fresh = list(zip(missing, computed, strict=True))
            self._cache.put_many(info, role, fresh)
            known.update(fresh)
        misses = sum(1 for key in keys if key in missing)
        with self._stats_lock:
            self._cache_stats = CacheStats(
                hits=self._cache_stats.hits + len(keys) - misses,
                misses=self._cache_stats.misses + misses,
            )
        return [known[key] for key in keys]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _encode(embedding: Embedding) -> tuple[int, bytes, bytes | None]:
    if isinstance(embedding, DenseEmbedding):
        return int(embedding.truncated), embedding.values.astype("<f4").tobytes(), None
    return (
        int(embedding.truncated),
        embedding.values.astype("<f4").tobytes(),
        embedding.indices.astype("<u4").tobytes(),
    )


def _decode(truncated: bool, vector: bytes, indices: bytes | None) -> Embedding:
    values = np.frombuffer(vector, dtype="<f4").astype(np.float32)
    if indices is None:
        return DenseEmbedding(values=values, truncated=truncated)
    return SparseEmbedding(
        indices=np.frombuffer(indices, dtype="<u4").astype(np.uint32),
        values=values,
        truncated=truncated,
    )
