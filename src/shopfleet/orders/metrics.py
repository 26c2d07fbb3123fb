"""Orders' business counters, registered once per app in its own registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class OrdersMetrics:
    created: Counter
    rejected_for_stock: Counter
    replays: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> OrdersMetrics:
        return cls(
            created=Counter(
                "orders_created", "Orders confirmed with their stock reserved", registry=registry
            ),
            rejected_for_stock=Counter(
                "orders_rejected_stock",
                "Orders rejected because stock was short",
                registry=registry,
            ),
            replays=Counter(
                "idempotent_replays",
                "Order requests answered from an earlier request with the same Idempotency-Key",
                registry=registry,
            ),
        )
