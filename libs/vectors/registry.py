"""The view registry, kept inside each space's own collection on both adapters.

Payload-only records (``_registry`` = ``space`` or ``view``, no vector) describe the space and
every registered view, so views persist with the points they reference (an Edge data dir or a
Qdrant server holds everything) and ``vacuum`` needs nothing from the caller. Data filters always
name an ``owner``, which registry records lack, so records never show up as data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from libs.errors import ConflictError
from libs.vectors import views
from libs.vectors.backend import Backend, RawPoint
from libs.vectors.base import REGISTRY_FIELD, SpaceSpec, View
from libs.vectors.filters import Eq, HasId

_REGISTRY_NS = uuid.UUID("0c7f5a4e-8d1b-5e39-a6f2-4b9e0d3c71a8")
_SPACE_RECORD = str(uuid.uuid5(_REGISTRY_NS, "space"))


def _view_record(owner: str) -> str:
    return str(uuid.uuid5(_REGISTRY_NS, f"view/{owner}"))


@dataclass(frozen=True, slots=True)
class Registered:
    """A registered view, and the position of a materialisation in progress (if any): vacuum
    must keep that generation's copies although no segment names them yet."""

    view: View
    materialising: int | None


class Registry:
    def __init__(self, backend: Backend, *, page: int) -> None:
        self._backend = backend
        self._page = page

    async def spec(self, spec: SpaceSpec) -> SpaceSpec | None:
        """The spec stored in the space's collection; ``ConflictError`` if it is another one."""
        records = await self._backend.retrieve(spec.space_id, [_SPACE_RECORD])
        if not records:
            return None
        stored = SpaceSpec.model_validate(records[0].payload["spec"])
        if stored != spec:
            raise ConflictError(f"collection {spec.space_id} holds another space: {stored}")
        return stored

    async def put_spec(self, spec: SpaceSpec) -> None:
        record = {REGISTRY_FIELD: "space", "spec": spec.model_dump(mode="json")}
        point = RawPoint(_SPACE_RECORD, None, record)
        await self._backend.write(spec.space_id, [point], overwrite=True)

    async def load(self, spec: SpaceSpec, owner: str) -> Registered | None:
        records = await self._backend.retrieve(spec.space_id, [_view_record(owner)])
        if not records:
            return None
        payload = records[0].payload
        return Registered(View.model_validate(payload["view"]), payload.get("materialising"))

    async def save(self, view: View, *, materialising: int | None = None) -> None:
        record = {
            REGISTRY_FIELD: "view",
            "view": view.model_dump(mode="json"),
            "materialising": materialising,
        }
        point = RawPoint(_view_record(view.owner), None, record)
        await self._backend.write(view.space.space_id, [point], overwrite=True)

    async def drop(self, view: View) -> None:
        where = HasId(ids=(_view_record(view.owner),))
        await self._backend.delete_where(view.space.space_id, where)

    async def all(self, spec: SpaceSpec) -> tuple[list[View], list[str]]:
        """Every registered view, and the generations being materialised right now."""
        where = Eq(field=REGISTRY_FIELD, value="view")
        found: list[View] = []
        reserved: list[str] = []
        offset: str | None = None
        while True:
            records, offset = await self._backend.scroll(
                spec.space_id, where, limit=self._page, offset=offset, with_vectors=False
            )
            for record in records:
                view = View.model_validate(record.payload["view"])
                found.append(view)
                if record.payload.get("materialising") is not None:
                    position = int(record.payload["materialising"])
                    reserved.append(views.generation_owner(view.owner, position))
            if offset is None:
                return found, reserved
