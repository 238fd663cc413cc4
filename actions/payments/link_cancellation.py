"""Stopping an order's payment link, and finding out whether it was paid first."""

from __future__ import annotations

import logging

import stripe

from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payments.client import stripe_client
from actions.payments.errors import AlreadyPaid, PaymentError, PaymentProcessing
from actions.payments.verification import PAID_STATUSES

logger = logging.getLogger(__name__)

CANCEL_FAILED = "Sorry, I couldn't cancel your order just now. Please try again."


async def cancel_payment(order: Order) -> None:
    """Expires the order's open Checkout Session so its link stops working.

    An already expired session counts as cancelled; a completed one raises AlreadyPaid when
    the customer has paid in the meantime, PaymentProcessing while that payment is clearing,
    and counts as stopped once that payment has failed.
    """
    if not order.checkout_session_id:
        return
    client = stripe_client()
    try:
        await client.v1.checkout.sessions.expire_async(order.checkout_session_id)
        return
    except stripe.InvalidRequestError:
        pass  # not open any more: find out whether it expired or was paid
    except stripe.StripeError as error:
        logger.warning("stripe expire failed: order=%s error=%s", order.id, type(error).__name__)
        raise PaymentError(CANCEL_FAILED) from error
    try:
        session = await client.v1.checkout.sessions.retrieve_async(order.checkout_session_id)
    except stripe.StripeError as error:
        logger.warning("stripe retrieve failed: order=%s error=%s", order.id, type(error).__name__)
        raise PaymentError(CANCEL_FAILED) from error
    if session.status != "complete":
        return
    if session.payment_status in PAID_STATUSES:
        raise AlreadyPaid(
            "Your payment for this order has already gone through, so I can't cancel it here. "
            "You'll get the confirmation in a moment."
        )
    if order.status != OrderStatus.PAYMENT_FAILED:
        # Complete but unpaid: a bank debit still clearing. Its failure stays complete and
        # unpaid at Stripe; the order records it (payment_failed), and then a new link may go.
        raise PaymentProcessing(
            f"Your payment for order {order.id} is still being processed. "
            "I'll confirm as soon as it clears."
        )
