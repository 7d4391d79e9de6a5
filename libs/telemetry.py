"""OpenTelemetry helpers: one tracer, W3C trace context in message headers, messaging spans,
and Offshoot's metric instruments.

Offshoot only uses the OpenTelemetry *API*; a process that wants traces and metrics installs SDK
providers (``libs.observability.configure`` in role processes, or for Offshoot alone with
``use_tracer_provider``/``use_meter_provider``). Without them, every span and measurement here is
a no-op and costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

__all__ = [
    "TRACE_HEADERS",
    "Instruments",
    "consumer_span",
    "context_from_carrier",
    "current_trace_context",
    "extract_context",
    "fastapi_settings",
    "get_tracer",
    "inject_headers",
    "instruments",
    "producer_span",
    "record_consumer_lag",
    "use_meter_provider",
    "use_tracer_provider",
]

INSTRUMENTATION_NAME = "offshoot"

#: The header names the W3C TraceContext propagator reads and writes.
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

_propagator = TraceContextTextMapPropagator()
_provider_override: TracerProvider | None = None


def get_tracer(name: str = INSTRUMENTATION_NAME) -> Tracer:
    """The tracer Offshoot's code uses: from ``use_tracer_provider`` if set, else the global one."""
    provider = _provider_override or trace.get_tracer_provider()
    return provider.get_tracer(name)


@contextmanager
def use_tracer_provider(provider: TracerProvider | None) -> Iterator[None]:
    """Route Offshoot's spans to ``provider`` for the duration of the block, then restore.

    OpenTelemetry lets the *global* provider be set only once per process; tests and embedders
    that need their own provider use this instead.
    """
    global _provider_override
    previous = _provider_override
    _provider_override = provider
    try:
        yield
    finally:
        _provider_override = previous


def fastapi_settings() -> TelemetryConfig:
    """``FastAPI(telemetry=...)``: FastAPI's native request spans and HTTP metrics go to the
    providers Offshoot's code uses (the overrides when set, else the global ones, which leave
    FastAPI's telemetry off until a process configures them); health probes are not traced."""
    return {
        "tracer_provider": _provider_override,
        "meter_provider": _meter_override,
        "exclude": _is_probe,
    }


def _is_probe(scope: Any) -> bool:
    return scope.get("path") in ("/healthz", "/readyz")


def inject_headers(
    headers: Mapping[str, str] | None = None, *, context: Context | None = None
) -> dict[str, str]:
    """A copy of ``headers`` with ``traceparent``/``tracestate`` for ``context`` (default: current).

    Without a valid span in the context the copy carries no trace headers (stale ones are dropped).
    """
    carrier = {k: v for k, v in (headers or {}).items() if k not in TRACE_HEADERS}
    _propagator.inject(carrier, context=context)
    return carrier


def current_trace_context() -> dict[str, str]:
    """The current span as a W3C carrier (``traceparent``/``tracestate``); ``{}`` without one.

    This is what gets stored in an event's metadata so the outbox can continue the trace.
    """
    return inject_headers()


def extract_context(headers: Mapping[str, str]) -> Context:
    """The remote span context carried by ``headers`` (an empty context when there is none)."""
    return _propagator.extract(dict(headers))


def _has_span(context: Context) -> bool:
    return trace.get_current_span(context).get_span_context().is_valid


@contextmanager
def producer_span(
    destination: str,
    *,
    system: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    parent: Context | None = None,
) -> Iterator[Span]:
    """A PRODUCER span ``send <destination>``, current inside the block; ``parent`` defaults to
    the current context."""
    attrs: dict[str, AttributeValue] = {
        "messaging.system": system,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": destination,
        **(attributes or {}),
    }
    with get_tracer().start_as_current_span(
        f"send {destination}", context=parent, kind=SpanKind.PRODUCER, attributes=attrs
    ) as span:
        yield span


@contextmanager
def consumer_span(
    destination: str,
    *,
    system: str,
    headers: Mapping[str, str],
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A CONSUMER span ``process <destination>`` whose parent is the span that produced the message
    (read from ``headers``); a message without trace headers continues the current trace."""
    attrs: dict[str, AttributeValue] = {
        "messaging.system": system,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": destination,
        **(attributes or {}),
    }
    with get_tracer().start_as_current_span(
        f"process {destination}",
        context=context_from_carrier(headers),
        kind=SpanKind.CONSUMER,
        attributes=attrs,
    ) as span:
        yield span


def context_from_carrier(carrier: Mapping[str, str]) -> Context | None:
    """The context in ``carrier`` if it holds a valid span, else ``None`` (use the current one)."""
    remote = extract_context(carrier)
    return remote if _has_span(remote) else None


# ---- metrics ----------------------------------------------------------------------------------

_meter_override: MeterProvider | None = None
_lags: dict[tuple[str, str], int] = {}


@dataclass(frozen=True)
class Instruments:
    """Offshoot's metric instruments, created once per meter provider (see ``instruments``)."""

    query_duration: Histogram  # offshoot.retrieval.query.duration, ms per retriever execution
    documents: Counter  # offshoot.extractor.documents written; throughput is its rate


_instruments: WeakKeyDictionary[MeterProvider, Instruments] = WeakKeyDictionary()


@contextmanager
def use_meter_provider(provider: MeterProvider | None) -> Iterator[None]:
    """Route Offshoot's measurements to ``provider`` for the block (as ``use_tracer_provider``)."""
    global _meter_override
    previous = _meter_override
    _meter_override = provider
    try:
        yield
    finally:
        _meter_override = previous


def instruments() -> Instruments:
    """The instruments of the current meter provider (the override, else the global one).

    The first call for a provider creates them, with the ``offshoot.bus.consumer.lag`` gauge,
    which reports what ``record_consumer_lag`` last recorded.
    """
    provider = _meter_override or metrics.get_meter_provider()
    found = _instruments.get(provider)
    if found is None:
        meter = provider.get_meter(INSTRUMENTATION_NAME)
        found = Instruments(
            query_duration=meter.create_histogram(
                "offshoot.retrieval.query.duration",
                unit="ms",
                description="Duration of a retriever execution (all stages, or a cache hit).",
            ),
            documents=meter.create_counter(
                "offshoot.extractor.documents",
                unit="{document}",
                description="Documents written by the extractor (ingestion, trigger, back-fill).",
            ),
        )
        meter.create_observable_gauge(
            "offshoot.bus.consumer.lag",
            callbacks=[_observe_lags],
            unit="{message}",
            description="Messages of a topic a consumer group has not committed yet.",
        )
        _instruments[provider] = found
    return found


def record_consumer_lag(group: str, topic: str, lag: int) -> None:
    """The latest lag of ``group`` on ``topic``, reported by the gauge at its next collection."""
    _lags[(group, topic)] = lag


def _observe_lags(options: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(
            lag, {"messaging.consumer.group.name": group, "messaging.destination.name": topic}
        )
        for (group, topic), lag in sorted(_lags.items())
    ]
