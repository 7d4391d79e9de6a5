"""Process set-up for telemetry: SDK providers, exporters and JSON logs (ADR 0016).

``configure(service_name)`` is called once, at the start of a role process (``offshoot serve``,
``python -m offshoot.services``); never by the embedded client or by tests, which keep the
OpenTelemetry API's no-op default or route Offshoot's spans and measurements to their own
providers (``libs.telemetry.use_tracer_provider``/``use_meter_provider``).

Exporters: OTLP over HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the exporters read the
standard ``OTEL_EXPORTER_OTLP_*`` variables themselves), the console when
``OFFSHOOT_TELEMETRY=console``, otherwise none: spans are still recorded, so log lines carry
trace ids that join the processes' logs, but nothing floods stdout.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from libs import telemetry
from libs.errors import InvalidInputError

__all__ = ["Exporter", "JsonFormatter", "Telemetry", "configure", "configure_logging", "exporter"]

Exporter = Literal["otlp", "console"]
LOG_FORMATS = ("json", "text")
# Loggers that write a line per message at INFO: kept at WARNING unless the level is DEBUG.
_CHATTY = ("aiokafka", "offshoot.bus.faststream")


@dataclass(frozen=True)
class Telemetry:
    """What ``configure`` installed; ``exporter`` None means nothing leaves the process."""

    service_name: str
    exporter: Exporter | None
    tracer_provider: TracerProvider
    meter_provider: MeterProvider


def exporter(environ: Mapping[str, str]) -> Exporter | None:
    """``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, ``console`` when
    ``OFFSHOOT_TELEMETRY=console``, else None."""
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return "otlp"
    chosen = environ.get("OFFSHOOT_TELEMETRY", "").strip().lower()
    if chosen == "console":
        return "console"
    if chosen not in ("", "none", "off"):
        raise InvalidInputError(f"OFFSHOOT_TELEMETRY={chosen!r}: use console or none")
    return None


def configure(service_name: str, *, log_format: str = "json") -> Telemetry:
    """Install global tracer and meter providers for ``service_name`` (``OTEL_SERVICE_NAME``
    wins), the exporters ``exporter`` picks, and a root log handler (``OFFSHOOT_LOG_FORMAT``,
    default ``log_format``; ``OFFSHOOT_LOG_LEVEL``, default INFO)."""
    env = os.environ
    chosen = exporter(env)
    name = env.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({"service.name": name})
    tracer_provider = TracerProvider(resource=resource)
    metric_exporter: MetricExporter | None = None
    span_exporter: SpanExporter | None = None
    if chosen == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter, metric_exporter = OTLPSpanExporter(), OTLPMetricExporter()
    elif chosen == "console":
        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    telemetry.instruments()  # registers the consumer-lag gauge with the new provider
    configure_logging(
        env.get("OFFSHOOT_LOG_FORMAT") or log_format, env.get("OFFSHOOT_LOG_LEVEL") or "INFO"
    )
    return Telemetry(name, chosen, tracer_provider, meter_provider)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the current span's trace_id and
    span_id (when there is one), exception (when the record has one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Replace the root logger's handlers with one on stderr, in ``json`` or ``text``."""
    if log_format not in LOG_FORMATS:
        raise InvalidInputError(f"OFFSHOOT_LOG_FORMAT={log_format!r}: use json or text")
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
