"""Prometheus metrics of the connector, served at GET /webhooks/whatsapp/metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

WEBHOOK_REQUESTS = Counter(
    "shop_webhook_requests",
    "Webhook requests answered, by webhook and HTTP status.",
    ["webhook", "status"],
    registry=REGISTRY,
)
FLOW_RESPONSE_SECONDS = Histogram(
    "shop_flow_response_seconds",
    "Time to answer a WhatsApp Flows data request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
STRIPE_EVENT_LAG_SECONDS = Histogram(
    "shop_stripe_event_lag_seconds",
    "From Stripe creating an event to our receiving it.",
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
    registry=REGISTRY,
)
STRIPE_UNMAPPED_PAYMENTS = Counter(
    "shop_stripe_unmapped_payments",
    "Paid Checkout Sessions whose event names no customer we could find (no metadata, not "
    "a recovered copy of a session we recorded): someone paid and was not told.",
    registry=REGISTRY,
)
OUTBOX_DELIVERIES = Counter(
    "shop_outbox_delivery_attempts",
    "Order notification delivery attempts, by result (sent, retry, dead, undeliverable).",
    ["result"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "shop_outbox_pending", "Order notifications waiting to be sent.", registry=REGISTRY
)
OUTBOX_DEAD = Gauge("shop_outbox_dead", "Dead-lettered order notifications.", registry=REGISTRY)
OUTBOX_UNDELIVERABLE = Gauge(
    "shop_outbox_undeliverable",
    "Order notifications WhatsApp's rules forbade sending (no template, no phone number).",
    registry=REGISTRY,
)
UNREADABLE_ROWS = Counter(
    "shop_unreadable_rows",
    "Stored rows whose sealed values do not open (altered, or moved from another row), by "
    "table: set aside once for an operator, never replayed or sent.",
    ["table"],
    registry=REGISTRY,
)
