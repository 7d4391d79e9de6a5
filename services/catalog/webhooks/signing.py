"""HMAC-SHA256 signatures of webhook deliveries, for the sender and for receivers.

The signed message is ``f"{timestamp}.".encode() + body``: binding the timestamp lets a receiver
refuse an old request replayed by someone who captured it (``tolerance``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "generate_secret",
    "sign",
    "signature_headers",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Offshoot-Timestamp"
SIGNATURE_HEADER = "X-Offshoot-Signature"
EVENT_ID_HEADER = "X-Offshoot-Event-Id"
_SCHEME = "sha256="


def generate_secret() -> str:
    """A new signing secret (256 bits), for subscriptions created without one."""
    return "whsec_" + secrets.token_urlsafe(32)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """``sha256=<hex>`` of ``timestamp + "." + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + _as_bytes(body)
    return _SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(
    secret: str, body: str | bytes, *, event_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a delivery carries; a fresh timestamp each attempt keeps retries verifiable."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(secret, stamp, body),
        EVENT_ID_HEADER: event_id,
    }


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    *,
    tolerance: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``signature`` is ours for this body and timestamp (compared in constant time).

    ``timestamp`` and ``signature`` are the ``X-Offshoot-Timestamp`` and ``X-Offshoot-Signature``
    headers as received; ``body`` is the raw request body, before any JSON parsing. With a
    ``tolerance`` (seconds), a timestamp further than that from ``now`` is refused too.
    """
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - stamp) > tolerance:
            return False
    return hmac.compare_digest(sign(secret, stamp, body), signature.strip())
