"""Stripe events at a steady rate against one Rasa process: how fast they are acknowledged,
how long until the customer's message reaches WhatsApp, and that none is lost or doubled.

Each event is a subscription renewal for its own customer, so each must produce exactly one
message (sent as the Utility template: these customers have not written in 24 hours).
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.figures import Figure, percentile
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import start_bot

RATE_PER_SECOND = 20
SECONDS = 60
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)


async def fire(url: str, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """Posts `count` events at the rate; returns (sent at, ack ms) per customer."""
    sent_at: dict[str, float] = {}
    ack_ms: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> None:
            customer = f"1555090{n:05d}"
            metadata = {"whatsapp_user_id": customer, "order_id": f"ORD-BENCH{n:05d}"}
            event = se.event(
                "invoice.paid",
                {
                    "id": f"in_{n}",
                    "object": "invoice",
                    "billing_reason": "subscription_cycle",
                    "parent": {"subscription_details": {"metadata": metadata}},
                },
            )
            body, headers = se.signed(event, WEBHOOK_SECRET)
            start = time.perf_counter()
            sent_at[customer] = time.time()
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
            ack_ms[customer] = (time.perf_counter() - start) * 1000

        tasks = []
        begin = time.perf_counter()
        for n in range(count):
            delay = begin + n / RATE_PER_SECOND - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return sent_at, ack_ms


def stripe_events() -> list[Figure]:
    graph = GraphApiEmulator()
    graph.start()
    env = {
        "WHATSAPP_ACCESS_TOKEN": graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_API_BASE": graph.base_url,
        "WHATSAPP_NOTIFICATION_TEMPLATE": "order_update",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LOG_LEVEL": "WARNING",
    }
    count = RATE_PER_SECOND * SECONDS
    with tempfile.TemporaryDirectory() as workdir:
        bot = start_bot(Path(workdir), env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
        try:
            sent_at, ack_ms = asyncio.run(fire(f"{bot.rasa_url}/webhooks/whatsapp/stripe", count))
            deadline = time.time() + 60
            while len(graph.messages()) < count and time.time() < deadline:
                time.sleep(0.5)
            time.sleep(2.0)
        finally:
            bot.stop()
            graph.stop()
    arrivals: dict[str, list[float]] = {}
    for request in graph.requests:
        body = request.json
        if isinstance(body, dict) and body.get("type") == "template":
            arrivals.setdefault(str(body.get("to")), []).append(request.received_at)
    delivered = [c for c in sent_at if len(arrivals.get(c, [])) == 1]
    doubled = sum(1 for times in arrivals.values() if len(times) > 1)
    latency_ms = [(arrivals[c][0] - sent_at[c]) * 1000 for c in delivered]
    acks = list(ack_ms.values())
    return [
        Figure("stripe_events_20_per_s_60_s", "ack p50", percentile(acks, 0.50), "ms"),
        Figure("stripe_events_20_per_s_60_s", "ack p99", percentile(acks, 0.99), "ms"),
        Figure("stripe_events_20_per_s_60_s", "to message p50", percentile(latency_ms, 0.50), "ms"),
        Figure("stripe_events_20_per_s_60_s", "to message p99", percentile(latency_ms, 0.99), "ms"),
        Figure(
            "stripe_events_20_per_s_60_s", "lost", float(count - len(delivered) - doubled), "events"
        ),
        Figure("stripe_events_20_per_s_60_s", "doubled", float(doubled), "events"),
    ]
