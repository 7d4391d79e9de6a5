"""OpenTelemetry helpers: one tracer, W3C trace context in message headers, messaging spans.

Offshoot only uses the OpenTelemetry *API*; a process that wants traces installs an SDK
``TracerProvider`` (globally, or for Offshoot alone with ``use_tracer_provider``). Without one,
every span here is a no-op and costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

__all__ = [
    "TRACE_HEADERS",
    "consumer_span",
    "context_from_carrier",
    "current_trace_context",
    "extract_context",
    "get_tracer",
    "inject_headers",
    "producer_span",
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
