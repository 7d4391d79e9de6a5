"""Renders the JSON Schemas and the AsyncAPI 3 document from the contract models.

``python -m contracts.export`` rewrites the files; ``--check`` exits 1 when they are stale
(the test suite runs the same comparison). Output is sorted so regenerated files diff cleanly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import contracts
from contracts import topics
from contracts.base import Command, Event, Message

ROOT = Path(__file__).parent
SCHEMA_DIR = ROOT / "schema"
ASYNCAPI_FILE = ROOT / "asyncapi.json"


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    if issubclass(model, Message):
        schema["x-type-name"] = model.type_name
        schema["x-schema-version"] = model.schema_version
    return schema


def render_schemas() -> dict[str, str]:
    """Relative file path → content, for every message model."""
    files = {
        "envelope.json": _dump(_schema(contracts.Envelope)),
        "dead-letter.json": _dump(_schema(contracts.DeadLetter)),
    }
    for name, event in sorted(Event.registry.items()):
        files[f"events/{name}.json"] = _dump(_schema(event))
    for name, command in sorted(Command.registry.items()):
        files[f"commands/{name}.json"] = _dump(_schema(command))
    return files


def _messages(registry: dict[str, type[Event]] | dict[str, type[Command]]) -> dict[str, Any]:
    """One AsyncAPI message per type: the envelope, with ``type`` fixed and ``data`` typed."""
    messages = {}
    for name, model in sorted(registry.items()):
        messages[name] = {
            "name": name,
            "title": model.__name__,
            "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"traceparent": {"type": "string"}, "tracestate": {"type": "string"}},
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": name},
                            "data": {"$ref": f"#/components/schemas/{model.__name__}"},
                        },
                    },
                ]
            },
        }
    return messages


def render_asyncapi() -> str:
    events = _messages(Event.registry)
    commands = _messages(Command.registry)
    schemas: dict[str, Any] = {}
    models: list[type[BaseModel]] = [contracts.Envelope, contracts.DeadLetter]
    models += [*Event.registry.values(), *Command.registry.values()]
    for model in models:
        schema = _schema(model)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def refs(names: dict[str, Any]) -> dict[str, Any]:
        return {name: {"$ref": f"#/components/messages/{name}"} for name in names}

    def channel(address: str, messages: dict[str, Any], description: str) -> dict[str, Any]:
        return {"address": address, "description": description, "messages": refs(messages)}

    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Offshoot",
            "version": "1",
            "description": "Events and commands on Kafka. Every message is keyed by namespace id.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "events": channel(
                topics.EVENTS, events, "Every stored event, published by the outbox."
            ),
            "commands": channel(
                topics.COMMANDS, commands, "Commands, authenticated like HTTP calls."
            ),
            "deadLetters": {
                "address": "{topic}" + topics.DEAD_LETTER_SUFFIX,
                "description": "Messages a consumer could not handle, with the reason.",
                "parameters": {"topic": {"description": "The topic the message came from."}},
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
        },
        "operations": {
            "publishEvents": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "consumeEvents": {"action": "receive", "channel": {"$ref": "#/channels/events"}},
            "consumeCommands": {"action": "receive", "channel": {"$ref": "#/channels/commands"}},
            "publishDeadLetters": {"action": "send", "channel": {"$ref": "#/channels/deadLetters"}},
        },
        "components": {
            "messages": {
                **events,
                **commands,
                "DeadLetter": {
                    "name": "DeadLetter",
                    "contentType": "application/json",
                    "payload": {"$ref": "#/components/schemas/DeadLetter"},
                },
            },
            "schemas": schemas,
        },
    }
    return _dump(document)


def rendered_files() -> dict[Path, str]:
    files = {SCHEMA_DIR / name: content for name, content in render_schemas().items()}
    files[ASYNCAPI_FILE] = render_asyncapi()
    return files


def stale_files() -> list[Path]:
    """Generated files whose content differs from what the code renders, plus orphans."""
    expected = rendered_files()
    stale = [
        path
        for path, content in expected.items()
        if not path.exists() or path.read_text() != content
    ]
    orphans = [path for path in SCHEMA_DIR.rglob("*.json") if path not in expected]
    return sorted(stale + orphans)


def write() -> None:
    expected = rendered_files()
    for path in SCHEMA_DIR.rglob("*.json"):
        if path not in expected:
            path.unlink()
    for path, content in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT.parent)} (run `make contracts`)")
        return 1 if stale else 0
    write()
    print(f"wrote {len(rendered_files())} files under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
