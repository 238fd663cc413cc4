"""A cancelled order paid through a link it did not create: refunded, not confirmed.

An expired link's follow-up may be Stripe's recovery URL, which opens a new Checkout Session
(a copy of the expired one, `recovered_from`) for 30 days, and no cancellation can stop it.
A customer who cancelled the order (or whose newer order replaced it) was told nothing is
charged; a payment through such a copy is refunded at once, through the same refund
machinery as a duplicate payment, and the customer is told so, once. A payment through a
session the order created itself (it went through just before the cancellation) still
confirms it: money taken there is the truth the order states describe.
"""

from __future__ import annotations

import logging

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.orders.states import OrderStatus
from actions.payments.duplicates import cancel_duplicate_subscription, refund_cancelled
from actions.payments.errors import PaymentError
from actions.payments.verification import CheckoutPayment
from actions.replies import STATEMENT_DELAY
from shop_contract.entities import STRIPE_EVENT_ID

logger = logging.getLogger(__name__)

RECOVERY_LINK_AFTER_CANCEL = (
    "The payment link I sent when its first link expired may still open; if you pay "
    "through it, we'll refund that payment automatically."
)


def paid_after_cancel(order: Order, checkout: CheckoutPayment) -> bool:
    """True for a payment of a cancelled order through a session the order never had."""
    return order.status == OrderStatus.CANCELLED and not order.had_session(checkout.session_id)


async def refund_cancelled_payment(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, checkout: CheckoutPayment
) -> None:
    """Undoes the payment (a refund, or a subscription stopped at once), tells the customer
    and logs what was done, or what a person must do when Stripe could not."""
    event_id = entity(tracker, STRIPE_EVENT_ID)
    amount = format_amount(checkout.amount_total or order.total, order.currency)
    cancelled = f"Order {order.id} was cancelled, so we don't keep your payment of {amount}"
    if checkout.payment_intent is None and checkout.subscription is not None:
        await _stop_subscription(dispatcher, order, checkout.subscription, event_id, cancelled)
        return
    if checkout.payment_intent is None:
        logger.error(
            "payment of a cancelled order without a payment intent, refund it by hand: "
            "event=%s order=%s",
            event_id,
            order.id,
        )
        dispatcher.utter_message(text=f"{cancelled}: we'll refund it shortly.")
        return
    try:
        refund_id = await refund_cancelled(order, checkout.payment_intent)
    except PaymentError as error:
        logger.error(
            "payment of a cancelled order not refunded, refund it by hand: "
            "event=%s order=%s error=%s",
            event_id,
            order.id,
            error,
        )
        dispatcher.utter_message(text=f"{cancelled}. {error.customer_message}")
        return
    logger.warning(
        "payment of a cancelled order refunded: event=%s order=%s session=%s refund=%s",
        event_id,
        order.id,
        checkout.session_id,
        refund_id,
    )
    dispatcher.utter_message(
        text=f"{cancelled}: we've refunded it in full. {STATEMENT_DELAY} "
        "Nothing is on its way for that order; order again any time."
    )


async def _stop_subscription(
    dispatcher: CollectingDispatcher,
    order: Order,
    subscription: str,
    event_id: object,
    cancelled: str,
) -> None:
    try:
        await cancel_duplicate_subscription(order, subscription)
    except PaymentError as error:
        logger.error(
            "subscription of a cancelled order not cancelled, cancel and refund it by hand: "
            "event=%s order=%s subscription=%s error=%s",
            event_id,
            order.id,
            subscription,
            error,
        )
        dispatcher.utter_message(
            text=f"{cancelled}: we'll stop the subscription and refund it shortly; "
            "the shop has been told."
        )
        return
    logger.error(
        "subscription of a cancelled order cancelled, refund its first payment by hand: "
        "event=%s order=%s subscription=%s",
        event_id,
        order.id,
        subscription,
    )
    dispatcher.utter_message(
        text=f"{cancelled}: we've cancelled the subscription so it won't bill you again, "
        "and we'll refund its first payment shortly."
    )
