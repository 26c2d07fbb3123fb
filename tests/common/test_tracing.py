"""Tracing: one order is one trace across orders and products; off unless configured."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shopfleet.common.tracing import tracing_requested
from tests.orders.conftest import open_shop


async def test_one_order_is_one_trace_across_orders_and_products(
    make_platform: Any, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = InMemorySpanExporter()
    caplog.set_level(logging.INFO, logger="shopfleet.access")
    options = {"app_options": {"span_exporter": exporter}, "orders": {"access_log": True}}
    async with open_shop(make_platform, **options) as shop:
        product = await shop.product(stock=5)
        customer = await shop.customer()
        exporter.clear()
        response = await shop.order(customer, [(product, 2)], key="trace-1")
        assert response.status_code == 201, response.text

    spans = exporter.get_finished_spans()
    order_span = next(
        s
        for s in spans
        if s.kind is SpanKind.SERVER
        and (s.attributes or {}).get("http.target") == "/v1/orders"
        and s.resource.attributes["service.name"] == "shopfleet-orders"
    )
    trace_id = order_span.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    services = {s.resource.attributes["service.name"] for s in in_trace}
    assert {"shopfleet-orders", "shopfleet-products"} <= services, services
    # Every products request of the order continues the orders trace: its parent is one of
    # orders' client spans, carried over by `traceparent` (the mesh shares no context).
    products_server = [
        s
        for s in in_trace
        if s.kind is SpanKind.SERVER
        and s.resource.attributes["service.name"] == "shopfleet-products"
    ]
    clients = {s.context.span_id for s in in_trace if s.kind is SpanKind.CLIENT}
    assert products_server and all(
        s.parent is not None and s.parent.span_id in clients for s in products_server
    )
    # Database statements of both services are spans of the same trace.
    statements = [s for s in in_trace if (s.attributes or {}).get("db.system")]
    assert {s.resource.attributes["service.name"] for s in statements} >= {
        "shopfleet-orders",
        "shopfleet-products",
    }
    # The access log line of the order carries its request id and its trace id.
    (line,) = [r for r in caplog.records if getattr(r, "path", None) == "/v1/orders"]
    assert line.trace_id == format(trace_id, "032x")  # type: ignore[attr-defined]
    assert line.request_id  # type: ignore[attr-defined]


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
