"""The message bus: the port (``Bus``), its adapters and the envelope layer above them.

``open_bus(url)`` picks the adapter: ``memory://`` (the embedded default, ``LocalBus``) or
``kafka://host:port[,host:port...]`` (``KafkaBus``; query options ``client_id``,
``replication_factor`` and ``prefix``, which isolates a deployment: ``PrefixedBus``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from libs.bus.base import Bus, Handler, Message
from libs.bus.consumer import (
    Deduplicator,
    EnvelopeConsumer,
    EnvelopeHandler,
    LruDeduplicator,
    Rejected,
    consume_envelopes,
    dlq_topic,
    publish_envelope,
)
from libs.bus.kafka import KafkaBus
from libs.bus.local import LocalBus
from libs.bus.prefixed import PrefixedBus
from libs.errors import InvalidInputError

__all__ = [
    "Bus",
    "Deduplicator",
    "EnvelopeConsumer",
    "EnvelopeHandler",
    "Handler",
    "KafkaBus",
    "LocalBus",
    "LruDeduplicator",
    "Message",
    "PrefixedBus",
    "Rejected",
    "consume_envelopes",
    "dlq_topic",
    "open_bus",
    "publish_envelope",
]


def open_bus(url: str) -> LocalBus | KafkaBus | PrefixedBus:
    """The adapter named by ``url`` (not started): ``memory://`` or ``kafka://host:port``."""
    parts = urlsplit(url)
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if parts.scheme == "memory":
        if parts.netloc or parts.path.strip("/") or options:
            raise InvalidInputError(f"memory:// takes no host, path or options: {url!r}")
        return LocalBus()
    if parts.scheme == "kafka":
        servers = [s for s in parts.netloc.split(",") if s]
        if not servers:
            raise InvalidInputError(f"kafka:// needs at least one host:port: {url!r}")
        unknown = set(options) - {"client_id", "replication_factor", "prefix"}
        if unknown:
            raise InvalidInputError(f"unknown kafka:// option(s) {sorted(unknown)} in {url!r}")
        try:
            replication = int(options.get("replication_factor", "1"))
        except ValueError:
            raise InvalidInputError(f"replication_factor must be an integer: {url!r}") from None
        kafka = KafkaBus(
            servers,
            client_id=options.get("client_id", "offshoot"),
            replication_factor=replication,
        )
        return PrefixedBus(kafka, options["prefix"]) if options.get("prefix") else kafka
    raise InvalidInputError(f"unknown bus URL {url!r}: use memory:// or kafka://host:port")
