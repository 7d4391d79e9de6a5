"""Webhooks: a namespace's subscriptions to event types, delivered as signed HTTP POSTs.

Subscriptions are namespace resources: their events live in the namespace's stream. A clone does
not inherit them (a staging copy must not call production's receivers); readers key them by the
``namespace_id`` in the event data, never by the stream that holds them.
"""

from __future__ import annotations

from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from contracts.base import Command, Event

EVENT_TYPE_PATTERN = r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$"
"""An exact type (``namespace.created``), a prefix wildcard (``namespace.*``) or ``*``."""

EventTypePattern = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=200)]


class CreateWebhook(Command):
    """Subscribe ``url`` to the namespace's events whose type matches one of ``event_types``.

    ``secret`` signs every delivery (HMAC-SHA256); when missing one is generated. Either way it
    is returned once, in the reply to this command, and never shown again.
    """

    type_name: ClassVar[str] = "webhook.create"

    url: str = Field(max_length=2048, json_schema_extra={"format": "uri"})
    event_types: list[EventTypePattern] = Field(min_length=1, max_length=50)
    secret: str | None = Field(default=None, min_length=16, max_length=256)
    description: str = Field(default="", max_length=2000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials (sign deliveries with the secret)")
        return value

    @field_validator("event_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookCreated(Event):
    """A subscription exists. The secret is stored here because signing needs it in clear."""

    type_name: ClassVar[str] = "webhook.created"

    webhook_id: str
    namespace_id: str
    organization_id: str
    url: str
    event_types: list[str]
    secret: str
    description: str = ""


class WebhookDeleted(Event):
    """A subscription is gone; its pending deliveries are dead-lettered."""

    type_name: ClassVar[str] = "webhook.deleted"

    webhook_id: str
    namespace_id: str
