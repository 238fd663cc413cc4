"""Undoing a payment the shop must not keep: a second payment of an order already paid, or a
payment of a cancelled order through a link the order did not create (a recovered copy).
A refund of a one-time payment, or the cancellation of a subscription; all are safe to run
again (a replayed turn)."""

from __future__ import annotations

import logging

import stripe

from actions.orders.model import Order
from actions.payments.client import stripe_client
from actions.payments.errors import PaymentError
from shop_contract.stripe_metadata import ORDER_ID_KEY

logger = logging.getLogger(__name__)

REFUND_FAILED = "We'll refund the second payment shortly; the shop has been told."
CANCELLED_REFUND_FAILED = "We'll refund that payment shortly; the shop has been told."


def refund_key(payment_intent: str, cause: str = "duplicate") -> str:
    """One key per unwanted payment: a retried or replayed refund is never a second one."""
    return f"refund-{cause}-{payment_intent}"


async def refund_duplicate(order: Order, payment_intent: str) -> str:
    """Refunds in full a second payment taken for an already paid order; the refund's id.

    PaymentError when Stripe refuses or cannot be reached (the caller logs it for a person).
    """
    return await _refund(order, payment_intent, "duplicate", REFUND_FAILED)


async def refund_cancelled(order: Order, payment_intent: str) -> str:
    """Refunds in full a payment for a cancelled order made through a session the order did
    not create (Stripe's recovered copy of an expired link); the refund's id.

    PaymentError when Stripe refuses or cannot be reached (the caller logs it for a person).
    """
    return await _refund(order, payment_intent, "cancelled", CANCELLED_REFUND_FAILED)


async def _refund(order: Order, payment_intent: str, cause: str, failed: str) -> str:
    client = stripe_client()
    try:
        refund = await client.v1.refunds.create_async(
            params={
                "payment_intent": payment_intent,
                "reason": "duplicate" if cause == "duplicate" else "requested_by_customer",
                "metadata": {ORDER_ID_KEY: order.id},
            },
            options={"idempotency_key": refund_key(payment_intent, cause)},
        )
    except stripe.StripeError as error:
        logger.warning(
            "stripe refund failed: order=%s error=%s code=%s",
            order.id,
            type(error).__name__,
            error.code,
        )
        raise PaymentError(failed, f"{type(error).__name__}: {error.code}") from error
    return refund.id


async def cancel_duplicate_subscription(order: Order, subscription_id: str) -> None:
    """Cancels, at once, a second subscription started for an already paid order, so it
    never bills again. PaymentError when Stripe cannot be reached.

    The id comes from Stripe's own session, so Stripe refusing it means it is cancelled
    already (a replayed turn): that counts as done.
    """
    client = stripe_client()
    try:
        await client.v1.subscriptions.cancel_async(subscription_id)
    except stripe.InvalidRequestError as error:
        logger.info("subscription already cancelled: order=%s code=%s", order.id, error.code)
    except stripe.StripeError as error:
        logger.warning(
            "stripe subscription cancel failed: order=%s error=%s code=%s",
            order.id,
            type(error).__name__,
            error.code,
        )
        raise PaymentError(REFUND_FAILED, f"{type(error).__name__}: {error.code}") from error
