"""Enrichment: payload fields other services compute (taxonomy labels, cluster ids) written onto
documents the extractor owns, through the extractor's own events.

Documents belong to the extractor, so a taxonomy or cluster job does not write vectors itself:
it hands ``{document_id: {field: value}}`` to ``ExtractorService.enrich_documents``, which

1. reads the documents' visible points in the collection's active view (with vectors),
2. drops the updates that change nothing (so re-applying a taxonomy writes nothing),
3. appends one ``extractor.documents_enriched`` event (its position is the new versions'
   ``born``), and
4. upserts each changed document with its vector unchanged and the merged payload at that
   position. In a fork the upsert writes the fork's own point and masks the inherited one, so
   the parent never sees a fork's labels, and a fork taken earlier never sees later ones.

Attribute filters read the payload in the vector store, so enriched fields are filterable at
once. A field set to ``None`` is removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contracts.extractor import DocumentsEnriched
from libs.errors import InvalidInputError
from libs.vectors import PointIn
from libs.vectors.base import RESERVED_FIELDS

if TYPE_CHECKING:
    from services.extractor.service import ExtractorService

# Fields the extractor itself writes: an enrichment may not overwrite lineage or text.
PROTECTED = frozenset(
    {
        "collection_id", "root_object_id", "object_id", "source_collection_id",
        "source_document_id", "lineage_path", "text", "chunk_index", "truncated", "batch_id",
    }
) | RESERVED_FIELDS  # fmt: skip


def merged(payload: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with ``fields`` set (``None`` removes a field)."""
    result = dict(payload)
    for key, value in fields.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def check_fields(updates: Mapping[str, Mapping[str, Any]]) -> None:
    for document_id, fields in updates.items():
        refused = PROTECTED.intersection(fields)
        if refused:
            raise InvalidInputError(
                f"document {document_id!r}: fields {sorted(refused)} belong to the extractor "
                "and cannot be enriched"
            )


async def enrich(
    service: ExtractorService,
    namespace_id: str,
    collection_id: str,
    updates: Mapping[str, Mapping[str, Any]],
    *,
    source: str,
    cause: uuid.UUID | None = None,
) -> int:
    """Write ``updates`` as new document versions; returns how many documents changed.
    ``cause`` makes the event id deterministic (a retried page appends nothing twice)."""
    check_fields(updates)
    found = await service._known(namespace_id, collection_id)
    view = await service._view(found["space"], found["owner"])
    points = await service.vectors.get(view=view, document_ids=list(updates), with_vectors=True)
    changed: list[PointIn] = []
    written: dict[str, dict[str, Any]] = {}
    for point in points:
        payload = merged(point.payload, updates[point.document_id])
        if payload == point.payload or point.vector is None:
            continue
        changed.append(PointIn(document_id=point.document_id, vector=point.vector, payload=payload))
        written[point.document_id] = dict(updates[point.document_id])
    if not changed:
        return 0
    event = DocumentsEnriched(
        namespace_id=namespace_id, collection_id=collection_id, owner=found["owner"],
        source=source, documents=written,
    )  # fmt: skip
    event_id = uuid.uuid5(cause, collection_id) if cause is not None else uuid.uuid4()
    (position,) = await service._append(namespace_id, [event], [event_id])
    await service.vectors.upsert(view=view, points=changed, position=position)
    return len(changed)
