"""OpenTelemetry tracing: off by default, on through the standard `OTEL_*` variables.

Each instance gets its own TracerProvider (one process per instance), so nothing is
patched globally: the ASGI server span wraps the app, the service client and the Redis
client are instrumented per object, and database statements get their spans from the
same cursor events that time them (`shopfleet.common.dbmetrics`). W3C `traceparent`
travels in from nginx (which passes it through) and out on every service call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shopfleet.common.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_EXPORTER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for traces (an OTLP endpoint or exporter)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or any(env.get(name) for name in _EXPORTER_VARIABLES)


def create_tracer_provider(
    settings: Settings, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider naming this instance; spans go to `exporter` or to OTLP over HTTP."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or f"shopfleet-{settings.service}",
            "service.namespace": "shopfleet",
            "service.instance.id": settings.instance_name,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def trace_clients(provider: TracerProvider, *, http: Any, redis: Any) -> None:
    """Spans (and an outgoing `traceparent`) for service calls, and spans for Redis."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=provider)
    if redis is not None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(redis, tracer_provider=provider)


def current_trace_id() -> str | None:
    """The running trace's id as 32 hex digits, for log lines."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
