"""What Stripe itself says about a Checkout Session, and whether that confirms an order.

A payment turn's entities only name the session: everything else is asked of Stripe here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import stripe

from actions.orders.model import Order
from actions.payments.client import stripe_client
from actions.payments.errors import PaymentError, StripeUnavailable
from actions.settings import action_settings
from shop_contract.links import is_customer_link
from shop_contract.stripe_metadata import ORDER_ID_KEY

logger = logging.getLogger(__name__)

PAID_STATUSES = ("paid", "no_payment_required")


@dataclass(frozen=True)
class CheckoutPayment:
    """What Stripe itself says about a Checkout Session: the only source a payment turn
    trusts (its entities only name the session)."""

    session_id: str
    status: str | None
    payment_status: str | None
    amount_total: int | None
    currency: str | None
    livemode: bool
    order_id: str | None
    payment_intent: str | None
    subscription: str | None
    amount_subtotal: int | None = None  # the line items, before delivery, discount and tax
    amount_shipping: int = 0  # total_details: what Stripe charged for each
    amount_discount: int = 0
    amount_tax: int = 0
    recovered_from: str | None = None  # the expired session this one is Stripe's copy of
    receipt_url: str | None = None  # the charge's receipt, or the invoice's hosted page
    customer: str | None = None  # the Stripe Customer the session paid as, when it has one

    @property
    def is_paid(self) -> bool:
        return self.status == "complete" and self.payment_status in PAID_STATUSES


# The receipt comes from a second retrieve, once the payment is verified: the
# PaymentIntent's charge (payment mode) and the first invoice (subscription mode) expanded
# in place of their ids. Apart from the verifying retrieve, so a key without read access to
# Charges or Invoices (or a failed expansion) never holds up a confirmation.
RECEIPT_EXPANSIONS = ["payment_intent.latest_charge", "invoice"]


def _id_of(value: object) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return found if isinstance(found, str) else None


async def retrieve_checkout(session_id: str) -> CheckoutPayment:
    """Asks Stripe for the Checkout Session `session_id`.

    PaymentError when Stripe says there is no such session (or no key is set: nothing to
    check against); StripeUnavailable when Stripe cannot answer now (network, 5xx, 429,
    authentication), so the caller's turn fails and is replayed.
    """
    client = stripe_client()
    try:
        session = await client.v1.checkout.sessions.retrieve_async(session_id)
    except stripe.InvalidRequestError as error:
        raise PaymentError(
            "We received a payment and are checking it.", f"retrieve refused: {error.code}"
        ) from error
    except stripe.StripeError as error:
        logger.warning("stripe retrieve failed: error=%s", type(error).__name__)
        raise StripeUnavailable(f"retrieve {session_id}: {type(error).__name__}") from error
    raw = session.to_dict()
    metadata = raw.get("metadata") or {}
    order_id = metadata.get(ORDER_ID_KEY)
    details = raw.get("total_details") or {}
    return CheckoutPayment(
        session_id=session.id,
        status=session.status,
        payment_status=session.payment_status,
        amount_total=session.amount_total,
        currency=session.currency,
        livemode=bool(session.livemode),
        order_id=order_id if isinstance(order_id, str) else None,
        payment_intent=_id_of(session.payment_intent),
        subscription=_id_of(session.subscription),
        amount_subtotal=raw.get("amount_subtotal"),
        amount_shipping=int(details.get("amount_shipping") or 0),
        amount_discount=int(details.get("amount_discount") or 0),
        amount_tax=int(details.get("amount_tax") or 0),
        recovered_from=_id_of(raw.get("recovered_from")),
        customer=_id_of(raw.get("customer")),
    )


# How long the confirmation waits for the receipt's retrieve (the payment is verified by then).
RECEIPT_TIMEOUT_SECONDS = 5.0


async def receipt_of(session_id: str) -> str | None:
    """Stripe's receipt link of a verified, paid session, best effort: None when Stripe
    gives none or refuses or cannot answer (a key without read access to Charges or
    Invoices, say) or slower than RECEIPT_TIMEOUT_SECONDS: the confirmation then goes out
    without it, never held up by a hanging Stripe."""
    try:
        session = await asyncio.wait_for(
            stripe_client().v1.checkout.sessions.retrieve_async(
                session_id, params={"expand": RECEIPT_EXPANSIONS}
            ),
            RECEIPT_TIMEOUT_SECONDS,
        )
    except (stripe.StripeError, PaymentError, asyncio.TimeoutError) as error:
        logger.info("receipt left out: error=%s", type(error).__name__)
        return None
    return receipt_link(session.to_dict())


def receipt_link(session: dict[str, Any]) -> str | None:
    """Stripe's receipt of a paid session: the charge's `receipt_url` (payment mode) or the
    invoice's `hosted_invoice_url` (subscription mode), from the expanded objects; None
    when Stripe gives none or it is no address to send a customer (not https)."""
    intent = session.get("payment_intent")
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    invoice = session.get("invoice")
    for holder, field in ((charge, "receipt_url"), (invoice, "hosted_invoice_url")):
        url = holder.get(field) if isinstance(holder, dict) else None
        if url is not None:
            return url if is_customer_link(url) else None
    return None


def recovered_copy_of(checkout: CheckoutPayment, order: Order) -> bool:
    """A session without our order id that Stripe says it recovered from one of the order's
    own sessions: its copy (the copy may lose the metadata), so it is that order's."""
    return (
        checkout.order_id is None
        and checkout.recovered_from is not None
        and order.had_session(checkout.recovered_from)
    )


def payment_mismatch(checkout: CheckoutPayment, order: Order) -> str | None:
    """Why Stripe's account of this Checkout Session cannot confirm `order`, or None."""
    if not checkout.is_paid:
        return f"session {checkout.status}/{checkout.payment_status}, not paid"
    if checkout.order_id != order.id and not recovered_copy_of(checkout, order):
        return f"session of order {checkout.order_id}"
    if checkout.amount_subtotal is not None and checkout.amount_subtotal != order.subtotal:
        return f"subtotal {checkout.amount_subtotal} != {order.subtotal}"
    if checkout.amount_shipping != order.shipping:
        return f"shipping {checkout.amount_shipping} != {order.shipping}"
    # A promotion code or Stripe Tax changes the total by what total_details reports.
    if not 0 <= checkout.amount_discount <= order.total or checkout.amount_tax < 0:
        return f"discount {checkout.amount_discount} or tax {checkout.amount_tax} out of range"
    expected = order.total - checkout.amount_discount + checkout.amount_tax
    if checkout.amount_total not in (expected, order.total - checkout.amount_discount):
        return f"amount {checkout.amount_total} != {order.total}"
    if str(checkout.currency).lower() != order.currency:
        return f"currency {checkout.currency} != {order.currency}"
    settings = action_settings().stripe
    if settings is None:
        return "livemode cannot be checked without STRIPE_SECRET_KEY"
    expected = settings.secret_key.startswith(("sk_live_", "rk_live_"))
    if checkout.livemode is not expected:
        return f"livemode {checkout.livemode} with a {'live' if expected else 'test'} key"
    return None
