"""Stripe's checks of a refund request (`POST /v1/refunds`): a paid PaymentIntent of one of
the account's sessions, a known reason, and an amount no larger than what is left."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox import checkout
from sandbox.stripe_api.checks import check_metadata, whole_number
from sandbox.stripe_api.errors import StripeApiError

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def checked_refund(
    sessions: Mapping[str, dict[str, Any]],
    refunds: Mapping[str, dict[str, Any]],
    params: Mapping[str, Any],
) -> tuple[dict[str, Any], int, int]:
    """The paid session to refund, the amount, and what was refunded of it before; raises
    StripeApiError as Stripe answers a request it refuses."""
    payment_intent = params.get("payment_intent")
    if not payment_intent:
        raise StripeApiError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
            param="payment_intent",
        )
    session = _paid_session_of(sessions, str(payment_intent))
    reason = params.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
    check_metadata(params.get("metadata"), "metadata")
    done = sum(r["amount"] for r in refunds.values() if r["payment_intent"] == payment_intent)
    left = session["amount_total"] - done
    if left <= 0:
        raise StripeApiError(
            400,
            f"Charge {checkout.charge_id(str(payment_intent))} has already been refunded.",
            code="charge_already_refunded",
        )
    amount = left if "amount" not in params else whole_number(params["amount"], "amount")
    if not 1 <= amount <= left:
        raise StripeApiError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            code="amount_too_large" if amount > left else "parameter_invalid_integer",
            param="amount",
        )
    return session, amount, done


def _paid_session_of(sessions: Mapping[str, dict[str, Any]], payment_intent: str) -> dict[str, Any]:
    for session in sessions.values():
        if session.get("payment_intent") == payment_intent:
            if session["payment_status"] != "paid":
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({payment_intent}) does not have a successful "
                    "charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            return session
    raise StripeApiError(
        404,
        f"No such payment_intent: '{payment_intent}'",
        code="resource_missing",
        param="payment_intent",
    )
