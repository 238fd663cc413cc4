"""A recovered copy of an expired link that lost our metadata: the payment confirmation
accepts it for an order only when Stripe says the copy was recovered from a session that
order had. Actions run as the action server runs them, against the Stripe emulator."""

from __future__ import annotations

from typing import Any

import requests

from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import slot_updates
from tests.support.stripe_checkout import awaiting_order, paid_event, run_stripe_action


def paid_copy_without_metadata(stripe_env: StripeEmulator, order: Order) -> dict[str, Any]:
    """The order's link expires; the customer opens its recovery URL, which opens a copy
    without our metadata, and pays it."""
    stripe_env.expire(str(order.checkout_session_id))
    original = stripe_env.sessions[str(order.checkout_session_id)]
    stripe_env.recover_without_metadata()
    assert requests.get(original["after_expiration"]["recovery"]["url"], timeout=5).ok
    (copy,) = [s for s in stripe_env.sessions.values() if s["recovered_from"] == original["id"]]
    assert copy["metadata"] == {}
    stripe_env.complete(copy["id"])
    return stripe_env.sessions[copy["id"]]


def test_a_copy_without_metadata_confirms_the_order_it_was_recovered_from(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    copy = paid_copy_without_metadata(stripe_env, order)
    expired = order.moved_to(OrderStatus.EXPIRED, followed_up=True, recovery_sent=True)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(expired, copy["id"]))
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    updated = slot_updates(events)
    assert (updated["order_status"], updated["order_paid_session"]) == ("paid", copy["id"])


def test_a_copy_without_metadata_does_not_confirm_another_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    recovered = awaiting_order(stripe_env, catalog)
    copy = paid_copy_without_metadata(stripe_env, recovered)
    other = awaiting_order(stripe_env, catalog)  # another order of the customer, named instead
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(other, copy["id"]))
    assert events == [] and "are checking it" in messages[0]["text"]
