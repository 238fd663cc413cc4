"""Confirming a payment: the order is marked paid once, from what Stripe itself says.

The connector feeds `checkout.session.completed` into the conversation as an external intent
with entities (`order_id`, `checkout_session_id`, `stripe_event_id`, the amounts, and
`duplicate_payment` when its claim found the order paid already). A payment is confirmed only
from what Stripe answers about the session named, never from the entities. A second payment
of an order already paid is undone (`actions.duplicate_payments`), and so is a payment of a
cancelled order through a recovered copy of its expired link (`actions.cancelled_payments`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.cancelled_payments import paid_after_cancel, refund_cancelled_payment
from actions.conversation import entity, event_order, save_event_order
from actions.duplicate_payments import refund_second_payment
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.payments.customers import paid_as, remember_customer
from actions.payments.errors import PaymentError
from actions.payments.link_cancellation import cancel_payment
from actions.payments.verification import (
    CheckoutPayment,
    payment_mismatch,
    receipt_of,
    retrieve_checkout,
)
from shop_contract.catalog import default_catalog
from shop_contract.entities import CHECKOUT_SESSION_ID, DUPLICATE_PAYMENT, ORDER_ID, STRIPE_EVENT_ID

logger = logging.getLogger(__name__)


class ActionPaymentSucceeded(Action):
    """Marks the order paid, once, and confirms it; refunds a second payment for an order
    already paid.

    Nothing about the payment is taken from the turn's entities: they only name the Checkout
    Session, which is looked up at Stripe. When Stripe cannot answer, the action fails
    (StripeUnavailable), so the connector keeps the event and replays it later.
    """

    def name(self) -> str:
        return "action_payment_succeeded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None:
            return payment_for_unknown_order(dispatcher, tracker)
        session_id = entity(tracker, CHECKOUT_SESSION_ID)
        if session_id is None:
            return not_confirmed(dispatcher, tracker, order, "no checkout session named")
        try:
            checkout = await retrieve_checkout(str(session_id))
        except PaymentError as error:
            return not_confirmed(dispatcher, tracker, order, str(error))
        mismatch = payment_mismatch(checkout, order)
        if mismatch:
            return not_confirmed(dispatcher, tracker, order, mismatch)
        if paid_after_cancel(order, checkout):
            await refund_cancelled_payment(dispatcher, tracker, order, checkout)
            return []
        if is_duplicate(tracker, order, checkout.session_id):
            await refund_second_payment(dispatcher, tracker, order, checkout)
            return []
        if order.is_paid:
            if order.paid_session is None:
                # Paid before sessions were recorded: this may be that payment told again or
                # a second one, which only the shop can tell apart at Stripe.
                logger.error(
                    "payment for an order paid before its session was recorded, not "
                    "confirmed again; check at Stripe whether it is a second payment to "
                    "refund: event=%s order=%s",
                    entity(tracker, STRIPE_EVENT_ID),
                    order.id,
                )
            return []  # the same payment told again (or by another event)
        paid = order.paid_by(
            checkout.session_id,
            checkout.payment_intent,
            checkout.subscription,
            paid_as(checkout),
        )
        await stop_other_link(order, checkout.session_id)
        checkout = replace(checkout, receipt_url=await receipt_of(checkout.session_id))
        dispatcher.utter_message(
            text=f"Payment received, thank you! Order {paid.id} is confirmed:\n"
            f"{charged_summary(paid, checkout)}{receipt_line(checkout)}"
        )
        return [*save_event_order(tracker, paid), *remember_customer(tracker, checkout.customer)]


def charged_summary(order: Order, checkout: CheckoutPayment) -> str:
    """Every line of the order, then what Stripe says it charged: delivery, discount and tax
    when there were any, and the amount paid."""
    catalog = default_catalog()
    rows = order.summary(catalog).splitlines()[: len(order.lines)]
    money = order.currency
    if order.destination or checkout.amount_shipping:
        cost = (
            format_amount(checkout.amount_shipping, money) if checkout.amount_shipping else "free"
        )
        rows.append(f"Delivery{f' to {order.destination}' if order.destination else ''} — {cost}")
    if checkout.amount_discount:
        rows.append(f"Discount — −{format_amount(checkout.amount_discount, money)}")
    if checkout.amount_tax:
        rows.append(f"Tax — {format_amount(checkout.amount_tax, money)}")
    rows.append(f"Paid: {format_amount(checkout.amount_total or 0, money)}")
    return "\n".join(rows)


def receipt_line(checkout: CheckoutPayment) -> str:
    """Stripe's receipt (or invoice) link as the confirmation's last line, when Stripe gave
    one: a line, not a button, so the confirmation stays one text that the Utility template
    carries whole outside the 24-hour window."""
    if checkout.receipt_url is None:
        return ""
    kind = "Invoice" if checkout.subscription else "Receipt"
    return f"\n{kind}: {checkout.receipt_url}"


def payment_for_unknown_order(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    """A payment for an order this conversation does not hold (dropped, or never ours): the
    shop must look at it, and the customer hears that it arrived."""
    order_id = entity(tracker, ORDER_ID)
    logger.error(
        "payment for an order this conversation does not hold, check it by hand: event=%s order=%s",
        entity(tracker, STRIPE_EVENT_ID),
        order_id,
    )
    if order_id is not None:
        dispatcher.utter_message(
            text=f"We received a payment for order {order_id} and are checking it; "
            "the shop will contact you."
        )
    return []


def not_confirmed(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, why: str
) -> list[EventType]:
    logger.error(
        "payment not confirmed: event=%s order=%s mismatch=%s",
        entity(tracker, STRIPE_EVENT_ID),
        order.id,
        why,
    )
    dispatcher.utter_message(
        text=f"We received a payment for order {order.id} and are checking it. "
        "We'll get back to you shortly."
    )
    return []


def is_duplicate(tracker: Tracker, order: Order, session_id: str) -> bool:
    """True when this session's payment is a second one for the order: the connector's
    atomic claim says so (`duplicate_payment`, whatever this tracker holds), or the tracker
    has the order paid through another session. The session that paid the order is never
    its own duplicate (that would refund the payment the order was confirmed with)."""
    flagged = str(entity(tracker, DUPLICATE_PAYMENT)).lower() == "true"
    if order.paid_session == session_id:
        if flagged:
            logger.error(
                "duplicate flag on the payment that confirmed the order, not refunded: "
                "event=%s order=%s",
                entity(tracker, STRIPE_EVENT_ID),
                order.id,
            )
        return False
    return flagged or (order.is_paid and order.paid_session is not None)


async def stop_other_link(order: Order, paid_session: str) -> None:
    """Paid through an older session: the order's current link stops too, so it cannot be
    paid a second time. Best effort: a second payment that slips through is refunded."""
    if order.checkout_session_id in (None, paid_session):
        return
    try:
        await cancel_payment(order)
    except PaymentError as error:
        logger.info("paid order's other link not stopped: order=%s reason=%s", order.id, error)
