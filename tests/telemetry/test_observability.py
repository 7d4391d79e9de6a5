"""Process set-up: JSON log lines that name the current span, and the exporter choice."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider

from libs import telemetry
from libs.errors import InvalidInputError
from libs.observability import JsonFormatter, exporter


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through ``JsonFormatter`` to a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("offshoot.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_a_json_line_names_the_current_span_and_the_exception(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    with (
        telemetry.use_tracer_provider(TracerProvider()),
        telemetry.get_tracer().start_as_current_span("work") as span,
    ):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("batch %s failed", "bat_1")

    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR",
        "offshoot.test.json",
        "batch bat_1 failed",
    )
    assert entry["exception"].endswith("ValueError: boom")
    assert datetime.fromisoformat(entry["ts"]).tzinfo is not None


def test_a_json_line_outside_a_span_has_no_trace_ids(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("started")

    entry = json.loads(stream.getvalue())
    assert entry["message"] == "started"
    assert "trace_id" not in entry and "span_id" not in entry and "exception" not in entry


@pytest.mark.parametrize(
    ("environ", "chosen"),
    [
        ({}, None),
        ({"OFFSHOOT_TELEMETRY": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OFFSHOOT_TELEMETRY": "console",
            },
            "otlp",
        ),
        ({"OFFSHOOT_TELEMETRY": "none"}, None),
    ],
)
def test_otlp_when_an_endpoint_is_set_console_on_request_else_nothing(
    environ: dict[str, str], chosen: str | None
) -> None:
    assert exporter(environ) == chosen


def test_an_unknown_telemetry_choice_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="OFFSHOOT_TELEMETRY='jaeger'"):
        exporter({"OFFSHOOT_TELEMETRY": "jaeger"})
