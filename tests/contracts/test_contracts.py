"""Wire contracts: exported files stay current, envelopes refuse bad input, old events upcast."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from contracts import Envelope, Event, decode_event, upcaster
from contracts.export import stale_files
from contracts.namespaces import CreateNamespace, NamespaceCreated
from libs.errors import InvalidInputError


def test_exported_json_schemas_and_asyncapi_match_the_code() -> None:
    assert stale_files() == [], "run `make contracts` and commit the result"


def test_envelope_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="surprise"):
        Envelope.model_validate(
            {
                "event_id": str(uuid.uuid4()),
                "type": "x",
                "stream_id": "s",
                "version": 1,
                "surprise": 1,
            }
        )


def test_envelope_refuses_a_version_below_one() -> None:
    with pytest.raises(ValidationError, match="version"):
        Envelope(event_id=uuid.uuid4(), type="x", stream_id="s", version=0)


def test_envelope_round_trips_through_json() -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(),
        type="namespace.created",
        stream_id="ns_1",
        version=1,
        global_position=7,
        namespace_id="ns_1",
        trace_context={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
        data={"namespace_id": "ns_1", "namespace_name": "prod"},
    )
    assert Envelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_a_command_with_a_bad_name_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="namespace_name"):
        CreateNamespace(namespace_name="Not A Name!")


def test_decoding_an_event_gives_its_typed_model() -> None:
    data = {"namespace_id": "ns_1", "organization_id": "org_1", "namespace_name": "prod"}
    event = decode_event("namespace.created", data)
    assert event == NamespaceCreated(
        namespace_id="ns_1", organization_id="org_1", namespace_name="prod"
    )


def test_decoding_an_unknown_event_type_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown event type 'nope'"):
        decode_event("nope", {})


def test_old_schema_versions_are_upcast_before_validation() -> None:
    class Renamed(Event):
        type_name: ClassVar[str] = "test.upcast.renamed"
        schema_version: ClassVar[int] = 2
        title: str

    @upcaster("test.upcast.renamed", from_version=1)
    def rename_name_to_title(data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["name"]}

    try:
        assert decode_event("test.upcast.renamed", {"name": "x"}, schema_version=1) == Renamed(
            title="x"
        )
    finally:
        del Event.registry["test.upcast.renamed"]


def test_two_events_cannot_share_a_type_name() -> None:
    with pytest.raises(TypeError, match="defined twice"):

        class Twin(Event):
            type_name: ClassVar[str] = "namespace.created"


async def test_the_exported_openapi_document_matches_the_routes() -> None:
    from offshoot.openapi import TARGET, render

    assert TARGET.read_text() == await render(), "run `make contracts` and commit the result"
