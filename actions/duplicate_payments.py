"""An order paid twice (two of its Checkout Sessions, or a Flow and a retry): the second
payment is undone at Stripe, the customer is told, and the shop gets a log line naming what
to check by hand when Stripe could not do it."""

from __future__ import annotations

import logging

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.payments.duplicates import cancel_duplicate_subscription, refund_duplicate
from actions.payments.errors import PaymentError
from actions.payments.verification import CheckoutPayment
from actions.replies import STATEMENT_DELAY
from shop_contract.entities import STRIPE_EVENT_ID

logger = logging.getLogger(__name__)


async def refund_second_payment(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, checkout: CheckoutPayment
) -> None:
    """A second Checkout Session of an already paid order was paid too: refund it through
    Stripe (the PaymentIntent Stripe names for that session), or stop a second subscription,
    tell the customer, and log the event, order and refund for the shop."""
    event_id = entity(tracker, STRIPE_EVENT_ID)
    amount = format_amount(checkout.amount_total or order.total, order.currency)
    twice = f"You were charged twice for order {order.id}."
    if checkout.payment_intent is None and checkout.subscription is not None:
        await cancel_second_subscription(dispatcher, tracker, order, checkout.subscription)
        return
    if checkout.payment_intent is None:
        logger.error(
            "second payment without a payment intent, refund it by hand: event=%s order=%s",
            event_id,
            order.id,
        )
        dispatcher.utter_message(
            text=f"{twice} We'll refund the second payment of {amount} shortly."
        )
        return
    try:
        refund_id = await refund_duplicate(order, checkout.payment_intent)
    except PaymentError as error:
        logger.error(
            "duplicate payment not refunded, refund it by hand: event=%s order=%s error=%s",
            event_id,
            order.id,
            error,
        )
        dispatcher.utter_message(text=f"{twice} {error.customer_message}")
        return
    logger.warning(
        "duplicate payment refunded: event=%s order=%s refund=%s", event_id, order.id, refund_id
    )
    dispatcher.utter_message(
        text=f"You were charged twice for order {order.id}, so we refunded the second "
        f"payment of {amount}. {STATEMENT_DELAY}"
    )


async def cancel_second_subscription(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, subscription: str
) -> None:
    """A second subscription for a paid order: cancelled at Stripe at once so it never bills
    again. Its first payment is refunded by a person (the log line names what to refund):
    under this API version an invoice's payment is reached through its InvoicePayments, a
    path this shop does not automate."""
    event_id = entity(tracker, STRIPE_EVENT_ID)
    try:
        await cancel_duplicate_subscription(order, subscription)
    except PaymentError as error:
        logger.error(
            "second subscription not cancelled, cancel and refund it by hand: "
            "event=%s order=%s subscription=%s error=%s",
            event_id,
            order.id,
            subscription,
            error,
        )
        dispatcher.utter_message(
            text=f"You were charged twice for order {order.id}. {error.customer_message}"
        )
        return
    logger.error(
        "second subscription cancelled, refund its first payment by hand: "
        "event=%s order=%s subscription=%s",
        event_id,
        order.id,
        subscription,
    )
    dispatcher.utter_message(
        text=f"You were charged twice for order {order.id}. We've cancelled the second "
        "subscription so it won't bill you again, and we'll refund its first payment shortly."
    )
