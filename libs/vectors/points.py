"""Points across the port boundary: the checks on what may enter a space, and the conversions
between the port's models and the backends' raw form (system fields added on the way in,
split off on the way out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libs.errors import InvalidInputError
from libs.vectors.backend import RawPoint, RawRecord, RawVector
from libs.vectors.base import (
    RESERVED_FIELDS,
    SYSTEM_FIELDS,
    DenseVector,
    PointIn,
    PointRecord,
    ScoredPoint,
    SpaceSpec,
    SparseVector,
)

MAX_LIMIT = 10_000


def check_position(position: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise InvalidInputError(f"positions are global positions >= 0, got {position!r}")
    return position


def check_limit(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInputError(f"{name} must be between 1 and {MAX_LIMIT}, got {value!r}")
    return value


def check_vector(spec: SpaceSpec, vector: DenseVector | SparseVector, *, what: str) -> None:
    """Only vectors of the space's own feature (extractor version) and shape may enter it."""
    if isinstance(vector, DenseVector):
        shape = f"{len(vector.values)}-d dense"
    else:
        shape = f"sparse, max index {max(vector.indices, default=-1)}"
    if vector.feature_uri != spec.feature_uri or vector.kind != spec.kind:
        raise InvalidInputError(
            f"{what} vector of {vector.feature_uri} ({shape}) does not belong to the space "
            f"{spec.describe()}: a space is searched and written only with its own feature"
        )
    if isinstance(vector, DenseVector):
        if len(vector.values) != spec.dimension:
            raise InvalidInputError(
                f"{what} vector of {vector.feature_uri} has {len(vector.values)} dimensions, "
                f"but the space {spec.describe()} has {spec.dimension}"
            )
        if spec.distance == "cosine" and not any(vector.values):
            raise InvalidInputError(f"{what} vector of {vector.feature_uri} is all zeros")
    elif vector.indices and max(vector.indices) >= spec.dimension:
        raise InvalidInputError(
            f"{what} vector of {vector.feature_uri} has index {max(vector.indices)}, outside "
            f"the vocabulary of the space {spec.describe()}"
        )


def check_points(spec: SpaceSpec, points: Sequence[PointIn]) -> dict[str, PointIn]:
    """The batch by document id, after every check passed: a bad point fails the whole batch
    before anything is written."""
    by_document: dict[str, PointIn] = {}
    for point in points:
        check_vector(spec, point.vector, what=f"document {point.document_id!r}:")
        reserved = RESERVED_FIELDS.intersection(point.payload)
        if reserved:
            raise InvalidInputError(
                f"document {point.document_id!r}: payload keys {sorted(reserved)} are reserved "
                "for the store's system fields"
            )
        if point.document_id in by_document:
            raise InvalidInputError(f"document {point.document_id!r} appears twice")
        by_document[point.document_id] = point
    return by_document


def raw_vector(vector: DenseVector | SparseVector) -> RawVector:
    if isinstance(vector, DenseVector):
        return list(vector.values)
    return (list(vector.indices), list(vector.values))


def user_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in SYSTEM_FIELDS}


def stored(
    point_id: str,
    vector: RawVector,
    payload: dict[str, Any],
    *,
    owner: str,
    document_id: str,
    born: int,
) -> RawPoint:
    """A point as written: the user payload plus the system fields every view filter reads."""
    system = {"owner": owner, "born": born, "died": None, "document_id": document_id}
    return RawPoint(point_id, vector, {**payload, **system})


def _vector(spec: SpaceSpec, raw: RawVector) -> DenseVector | SparseVector | None:
    if raw is None:
        return None
    if isinstance(raw, tuple):
        return SparseVector(feature_uri=spec.feature_uri, indices=raw[0], values=raw[1])
    return DenseVector(feature_uri=spec.feature_uri, values=tuple(raw))


def record(spec: SpaceSpec, raw: RawRecord) -> PointRecord:
    payload = raw.payload
    return PointRecord(
        point_id=raw.id,
        document_id=payload["document_id"],
        owner=payload["owner"],
        born=payload["born"],
        payload=user_payload(payload),
        vector=_vector(spec, raw.vector),
    )


def scored(spec: SpaceSpec, raw: RawRecord) -> ScoredPoint:
    payload = raw.payload
    return ScoredPoint(
        point_id=raw.id,
        document_id=payload["document_id"],
        owner=payload["owner"],
        born=payload["born"],
        payload=user_payload(payload),
        vector=_vector(spec, raw.vector),
        score=float(raw.score or 0.0),
    )
