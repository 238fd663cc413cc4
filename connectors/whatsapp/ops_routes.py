"""What operators and monitors read: GET /webhooks/whatsapp/ (health) and /metrics; and
Meta's subscription handshake, GET /webhooks/whatsapp/webhook."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.jobs.customer_queue import CustomerQueues
from connectors.metrics import OUTBOX_DEAD, OUTBOX_PENDING, OUTBOX_UNDELIVERABLE, REGISTRY
from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)


class OpsRoutes:
    """Health and metrics, from the database and this process's queues and counters."""

    def __init__(
        self,
        store: ConnectorStore,
        queues: CustomerQueues,
        stripe_outcomes: Mapping[str, int],
        verify_token: str,
    ) -> None:
        self.store = store
        self.queues = queues
        self.stripe_outcomes = stripe_outcomes  # counted by the Stripe webhook as it goes
        self.verify_token = verify_token

    def verify_subscription(self, request: Request) -> HTTPResponse:
        """Meta's handshake: echo hub.challenge when mode and token match, else 403."""
        mode = request.args.get("hub.mode")
        token = request.args.get("hub.verify_token") or ""
        challenge = request.args.get("hub.challenge") or ""
        if mode == "subscribe" and hmac.compare_digest(token.encode(), self.verify_token.encode()):
            return response.text(challenge)
        logger.warning("webhook verification refused")
        return response.text("forbidden", status=403)

    async def health(self) -> HTTPResponse:
        """Database reachability and the backlog of unfinished work; 503 when degraded."""
        try:
            figures = await asyncio.to_thread(self.store.health)
        except Exception:
            logger.exception("health check: database unreachable")
            return response.json({"status": "degraded", "database": "unreachable"}, status=503)
        stripe = {f"stripe_{k}": v for k, v in sorted(self.stripe_outcomes.items())}
        return response.json(
            {
                "status": "ok",
                "database": "ok",
                "in_flight": self.queues.pending,
                **figures,
                **stripe,
            }
        )

    async def metrics(self) -> HTTPResponse:
        """Prometheus exposition of the connector's metrics."""
        try:
            figures = await asyncio.to_thread(self.store.health)
            OUTBOX_PENDING.set(figures["pending_notifications"])
            OUTBOX_DEAD.set(figures["dead_notifications"])
            OUTBOX_UNDELIVERABLE.set(figures["undeliverable_notifications"])
        except Exception:
            logger.exception("metrics: database unreachable")
        return response.raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
