"""Stripe event payloads as Stripe sends them, and their signature header."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any

from connectors.edge.signatures import stripe_signature

__all__ = ["stripe_signature"]

# Ids are unique across runs too: the bot keeps the ids it saw in its database.
_RUN = secrets.token_hex(4)
_ids = itertools.count(1)


def event(
    kind: str,
    obj: dict[str, Any],
    livemode: bool = False,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event of `obj`; `previous` is an update's `data.previous_attributes` (the values
    of the fields it changed, as they were before)."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": f"evt_test_{_RUN}{next(_ids):06d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": livemode,
        "type": kind,
        "data": data,
    }


def session(
    session_id: str,
    customer: str,
    order_id: str,
    amount_total: int,
    payment_status: str = "paid",
    currency: str = "eur",
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount_total,
        "currency": currency,
        "livemode": False,
        "payment_status": payment_status,
        "status": "complete" if payment_status != "unpaid" else "open",
        "client_reference_id": order_id,
        "metadata": {"whatsapp_user_id": customer, "order_id": order_id},
    }


def signed(
    document: dict[str, Any], secret: str, at: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    header = stripe_signature(body, secret, at if at is not None else int(time.time()))
    return body, {"Content-Type": "application/json", "Stripe-Signature": header}
