"""From inputs (objects, or upstream documents for tier N) to documents: text, chunks, vectors.

Pure apart from the model call, which runs in a worker thread in batches sized for throughput
(``EMBED_BATCH`` texts) so the event loop keeps serving while the model works. An input that
cannot give text (no text field, an unreadable blob) fails alone, with its reason; the rest of
the batch goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from contracts.extractor import DocumentFailure, DocumentRef
from libs.extractors import CachedExtractor, DenseEmbedding, Embedding
from libs.vectors import DenseVector, PointIn, SparseVector
from libs.vectors.base import RESERVED_FIELDS

EMBED_BATCH = 64
# Every model call of the extractor runs on this one thread. torch's OpenMP workers belong to
# the thread that calls the model and spin for a while after each call; batches handed to
# whichever thread of asyncio's default pool is free left other threads' workers spinning on
# the same cores as the next batch (the model ran ~10 % slower than alone).
_MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offshoot-model")
MAX_BLOB_BYTES = 16 * 1024 * 1024
_OWN_FIELDS = (
    "collection_id", "root_object_id", "object_id", "source_collection_id", "source_document_id",
    "lineage_path", "text", "chunk_index", "truncated", "batch_id",
)  # fmt: skip


class InputError(Exception):
    """An input that cannot be processed; recorded as a failure of its batch."""


@dataclass(frozen=True, slots=True)
class Input:
    """One thing to extract from: an object (tier 1) or an upstream document (tier N)."""

    input_id: str
    root_object_id: str
    fields: Mapping[str, Any]
    lineage_path: tuple[str, ...]
    text: str | None = None
    error: str | None = None
    source_collection_id: str | None = None
    source_document_id: str | None = None


@dataclass(slots=True)
class Outcome:
    documents: list[DocumentRef] = field(default_factory=list)
    points: list[PointIn] = field(default_factory=list)
    failures: list[DocumentFailure] = field(default_factory=list)
    model_calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    def drop(self, root_object_ids: set[str]) -> None:
        """Forget the documents of objects deleted while this outcome was being computed."""
        if not root_object_ids:
            return
        self.documents = [d for d in self.documents if d.root_object_id not in root_object_ids]
        self.points = [
            p for p in self.points if p.payload.get("root_object_id") not in root_object_ids
        ]


def document_id(collection_id: str, input_id: str, chunk_index: int) -> str:
    """Deterministic, so a replayed write lands on the same document (idempotent)."""
    digest = hashlib.sha256(f"{collection_id}\x00{input_id}\x00{chunk_index}".encode()).hexdigest()
    return f"doc_{digest[:20]}"


def _text_source(mappings: Mapping[str, str]) -> str:
    """The object field that feeds the model's ``text`` input (default ``text``)."""
    if "text" in mappings:
        return mappings["text"]
    return next(iter(mappings.values()), "text")


def _field(fields: Mapping[str, Any], path: str) -> Any:
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _read_blob(blob: Mapping[str, Any]) -> str:
    """Inline text, a server path or a ``file://`` URL; anything else is refused by name."""
    if blob.get("text") is not None:
        return str(blob["text"])
    location = blob.get("path")
    url = blob.get("url")
    if location is None and url is not None:
        parts = urlsplit(str(url))
        if parts.scheme != "file":
            raise InputError(
                f"blob {blob.get('property')!r}: cannot fetch {url!r} (only file:// URLs, paths and inline text)"
            )
        location = parts.path
    if location is None:
        raise InputError(f"blob {blob.get('property')!r} has no text, path or url")
    path = Path(str(location))
    try:
        if path.stat().st_size > MAX_BLOB_BYTES:
            raise InputError(f"blob {str(path)!r} is larger than {MAX_BLOB_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"blob {str(path)!r} is unreadable: {error}") from None


def object_text(
    fields: Mapping[str, Any], blobs: Sequence[Mapping[str, Any]], mappings: Mapping[str, str]
) -> str:
    """The object's text per ``input_mappings``: the named field, else a blob filling it."""
    source = _text_source(mappings)
    value = _field(fields, source)
    if value is None:
        blob = next((b for b in blobs if b.get("property") == source), None)
        if blob is None:
            raise InputError(f"no text: the object has no field or blob {source!r}")
        value = _read_blob(blob)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        raise InputError(f"field {source!r} is a {type(value).__name__}, not text")
    if not value.strip():
        raise InputError(f"no text: field {source!r} is empty")
    return value


def object_input(
    object_id: str,
    bucket_id: str,
    fields: Mapping[str, Any],
    blobs: Sequence[Mapping[str, Any]],
    mappings: Mapping[str, str],
) -> Input:
    """A tier-1 input; an object without text becomes an input that carries its error."""
    try:
        text: str | None = object_text(fields, blobs, mappings)
        error = None
    except InputError as failure:
        text, error = None, str(failure)
    return Input(object_id, object_id, fields, (bucket_id,), text=text, error=error)


def document_input(
    upstream_collection_id: str, document_id: str, payload: Mapping[str, Any]
) -> Input:
    """A tier-N input: an upstream document's text, fields and lineage."""
    text = payload.get("text")
    fields = {k: v for k, v in payload.items() if k not in _OWN_FIELDS and k not in RESERVED_FIELDS}
    return Input(
        input_id=document_id,
        root_object_id=str(payload.get("root_object_id", "")),
        fields=fields,
        lineage_path=tuple(payload.get("lineage_path") or ()),
        text=text if isinstance(text, str) and text.strip() else None,
        error=None
        if isinstance(text, str) and text.strip()
        else "no text in the upstream document",
        source_collection_id=upstream_collection_id,
        source_document_id=document_id,
    )


def _vector(feature_uri: str, embedding: Embedding) -> DenseVector | SparseVector:
    if isinstance(embedding, DenseEmbedding):
        return DenseVector(feature_uri=feature_uri, values=tuple(embedding.values.tolist()))
    return SparseVector(
        feature_uri=feature_uri,
        indices=tuple(int(i) for i in embedding.indices.tolist()),
        values=tuple(embedding.values.tolist()),
    )


async def embed(extractor: CachedExtractor, texts: list[str]) -> list[Embedding]:
    """Embeddings in batches of ``EMBED_BATCH``, each on the model thread."""
    loop = asyncio.get_running_loop()
    result: list[Embedding] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        result += await loop.run_in_executor(_MODEL_THREAD, extractor.embed, batch)
    return result


async def extract(
    extractor: CachedExtractor, collection_id: str, inputs: Sequence[Input], *, batch_id: str | None
) -> Outcome:
    """Documents (refs + points) for ``inputs``; failures for those without usable text."""
    outcome = Outcome()
    pending: list[tuple[Input, int, str]] = []
    for item in inputs:
        if item.error is not None or item.text is None:
            outcome.failures.append(
                DocumentFailure(input_id=item.input_id, root_object_id=item.root_object_id,
                                error=item.error or "no text")
            )  # fmt: skip
            continue
        chunks = extractor.chunk(item.text)
        if not chunks:
            outcome.failures.append(
                DocumentFailure(input_id=item.input_id, root_object_id=item.root_object_id,
                                error="no text after chunking")
            )  # fmt: skip
            continue
        pending += [(item, chunk.index, chunk.text) for chunk in chunks]
    if not pending:
        return outcome
    calls, hits, misses = (
        extractor.stats.calls,
        extractor.cache_stats.hits,
        extractor.cache_stats.misses,
    )
    embeddings = await embed(extractor, [text for _, _, text in pending])
    outcome.model_calls = extractor.stats.calls - calls
    outcome.cache_hits = extractor.cache_stats.hits - hits
    outcome.cache_misses = extractor.cache_stats.misses - misses
    feature_uri = extractor.info.feature_uri
    for (item, index, text), embedding in zip(pending, embeddings, strict=True):
        doc_id = document_id(collection_id, item.input_id, index)
        lineage = [*item.lineage_path, collection_id]
        ref = DocumentRef(
            document_id=doc_id, root_object_id=item.root_object_id,
            source_collection_id=item.source_collection_id,
            source_document_id=item.source_document_id, lineage_path=lineage,
            chunk_index=index, truncated=embedding.truncated,
        )  # fmt: skip
        payload: dict[str, Any] = {
            k: v
            for k, v in item.fields.items()
            if k not in RESERVED_FIELDS and k not in _OWN_FIELDS
        }
        payload.update(
            collection_id=collection_id, root_object_id=item.root_object_id,
            object_id=item.root_object_id, source_collection_id=item.source_collection_id,
            source_document_id=item.source_document_id, lineage_path=lineage, text=text,
            chunk_index=index, truncated=embedding.truncated, batch_id=batch_id,
        )  # fmt: skip
        outcome.documents.append(ref)
        outcome.points.append(
            PointIn(document_id=doc_id, vector=_vector(feature_uri, embedding), payload=payload)
        )
    return outcome
