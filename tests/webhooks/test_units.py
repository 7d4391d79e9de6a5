"""The pure parts: signatures, pattern matching, the retry policy, the delivered payload."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from contracts.envelope import Envelope
from contracts.webhooks import CreateWebhook
from libs.errors import InvalidInputError
from services.catalog.webhooks import RetryPolicy, matches, sign, verify_signature
from services.catalog.webhooks.dispatcher import delivery_id_for, payload_of
from services.catalog.webhooks.signing import signature_headers

SECRET = "whsec_test-secret-0123456789"


def test_a_signature_verifies_for_its_body_and_timestamp_only() -> None:
    body = b'{"type":"object.created"}'
    headers = signature_headers(SECRET, body, event_id="e1", timestamp=1_700_000_000)
    stamp, signature = headers["X-Offshoot-Timestamp"], headers["X-Offshoot-Signature"]

    assert verify_signature(SECRET, stamp, body, signature, now=1_700_000_010)
    assert verify_signature(SECRET, stamp, body.decode(), signature, now=1_700_000_010)
    assert not verify_signature(SECRET, stamp, body + b" ", signature, now=1_700_000_010)
    assert not verify_signature("whsec_other", stamp, body, signature, now=1_700_000_010)
    assert not verify_signature(SECRET, "1700000001", body, signature, now=1_700_000_010)
    assert not verify_signature(SECRET, "soon", body, signature, now=1_700_000_010)
    assert headers["X-Offshoot-Event-Id"] == "e1"


def test_a_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"42.hello", hashlib.sha256).hexdigest()

    assert sign(SECRET, 42, b"hello") == f"sha256={expected}"


def test_an_old_timestamp_is_refused_unless_the_tolerance_is_off() -> None:
    signature = sign(SECRET, 1000, b"x")

    assert not verify_signature(SECRET, 1000, b"x", signature, now=1000 + 301)
    assert verify_signature(SECRET, 1000, b"x", signature, now=1000 + 301, tolerance=None)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "anything.at.all", True),
        (["namespace.*"], "namespace.created", True),
        (["namespace.*"], "namespace.fork_acknowledged", True),
        (["namespace.*"], "namespaces.created", False),
        (["namespace.*"], "namespace", False),
        (["namespace.created"], "namespace.created", True),
        (["namespace.created"], "namespace.created_twice", False),
        (["task.*", "object.created"], "object.created", True),
        (["task.*", "object.created"], "object.deleted", False),
    ],
)
def test_event_type_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_backoff_grows_exponentially_is_capped_and_jittered_downwards() -> None:
    policy = RetryPolicy(base_delay=0.5, factor=2.0, max_delay=60.0, max_attempts=8, jitter=0.2)
    exact = RetryPolicy(base_delay=0.5, factor=2.0, max_delay=60.0, jitter=0.0)

    assert [exact.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    for attempts in range(1, 12):
        for _ in range(50):
            delay = policy.delay(attempts)
            assert 0.8 * exact.delay(attempts) <= delay <= exact.delay(attempts)


def test_the_default_policy_is_the_documented_one() -> None:
    assert RetryPolicy() == RetryPolicy(
        base_delay=0.5, factor=2.0, max_delay=60.0, max_attempts=8, jitter=0.2
    )


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_the_payload_leaves_out_secrets_of_other_subscriptions() -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(),
        type="webhook.created",
        stream_id="ns_1",
        version=3,
        namespace_id="ns_1",
        data={"webhook_id": "whk_1", "secret": "whsec_x", "url": "https://example.com"},
    )

    payload = json.loads(payload_of(envelope))

    assert payload["data"] == {"webhook_id": "whk_1", "url": "https://example.com"}
    assert payload["resource"] == "ns_1"


def test_a_delivery_id_is_a_function_of_webhook_and_event() -> None:
    assert delivery_id_for("whk_1", "e1") == delivery_id_for("whk_1", "e1")
    assert delivery_id_for("whk_1", "e1") != delivery_id_for("whk_2", "e1")
    assert delivery_id_for("whk_1", "e1").startswith("dlv_")


def test_the_command_dedupes_event_types_and_keeps_their_order() -> None:
    command = CreateWebhook(url="https://example.com/h", event_types=["b.*", "a", "b.*"])

    assert command.event_types == ["b.*", "a"]


def test_the_command_refuses_a_url_without_a_host() -> None:
    with pytest.raises(ValidationError, match="url"):
        CreateWebhook(url="https:///path", event_types=["*"])
