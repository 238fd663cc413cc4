"""Payment follow-ups without Stripe reachable (with the Stripe emulator:
tests/test_payment_link_actions.py, tests/test_payment_confirmation.py and their neighbours)."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import SlotSet

from actions.followup_actions import FOLLOWUP_SENT_SLOT, ActionCheckoutExpired
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payment_event_actions import (
    ActionPaymentFailed,
    ActionPaymentProcessing,
    ActionRefunded,
    ActionSubscriptionEvent,
)
from actions.payment_link_actions import ActionCreatePaymentLink
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, run_action, slot_updates

pytestmark = pytest.mark.usefixtures("no_stripe")


def awaiting(catalog: Catalog, **items: int) -> Order:
    return Order.start(catalog, items or {"espresso-beans": 2}).with_link(
        "cs_test_1", "https://pay/1"
    )


def event(intent: str, order: Order, slots: dict[str, Any] | None = None, **entities: Any) -> Any:
    return make_tracker(
        intent,
        {"order_id": order.id, "checkout_session_id": order.checkout_session_id, **entities},
        slots=order.to_slots() if slots is None else slots,
    )


def payment(order: Order, slots: dict[str, Any] | None = None, **entities: Any) -> Any:
    """A payment turn as the connector makes it from a verified checkout.session.completed."""
    verified = {
        "amount_total": order.total,
        "currency": order.currency,
        "livemode": False,
        "payment_intent": "pi_test_1",
        "stripe_event_id": "evt_test_1",
        **entities,
    }
    return event("EXTERNAL_payment_succeeded", order, slots, **verified)


def test_payment_link_without_stripe_says_so_and_keeps_the_draft(catalog: Catalog) -> None:
    draft = Order.start(catalog, {"gift-card": 1})
    messages, events = run_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=draft.to_slots())
    )
    assert "isn't set up" in messages[0]["text"]
    assert messages[0]["buttons"] == [{"title": "Try again", "payload": "/affirm"}]
    assert slot_updates(events)["order_status"] == "draft"


def test_payment_link_is_resent_while_awaiting_payment(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=order.to_slots())
    )
    assert "https://pay/1" in messages[0]["text"] and events == []


def test_payment_link_is_sent_as_a_cta_button_on_whatsapp(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = make_tracker("affirm", slots=order.to_slots(), channel="whatsapp")
    messages, _ = run_action(ActionCreatePaymentLink(), tracker)
    interactive = messages[0]["custom"]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["parameters"] == {
        "display_text": "Pay now",
        "url": "https://pay/1",
    }
    assert messages[0]["text"] is None


def test_no_open_order_to_pay() -> None:
    messages, events = run_action(ActionCreatePaymentLink(), make_tracker("affirm"))
    assert "no open order" in messages[0]["text"] and events == []


def test_payment_is_not_confirmed_when_livemode_cannot_be_checked(catalog: Catalog) -> None:
    messages, events = run_action(ActionPaymentSucceeded(), payment(awaiting(catalog)))
    assert events == [] and "checking it" in messages[0]["text"]  # no STRIPE_SECRET_KEY here


def test_payment_for_an_order_the_conversation_does_not_hold_is_logged_and_told(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    order = awaiting(catalog)
    tracker = make_tracker(
        "EXTERNAL_payment_succeeded",
        {"order_id": "ORD-OTHER", "stripe_event_id": "evt_test_9"},
        slots=order.to_slots(),
    )
    messages, events = run_action(ActionPaymentSucceeded(), tracker)
    assert events == []
    assert messages[0]["text"] == (
        "We received a payment for order ORD-OTHER and are checking it; the shop will contact you."
    )
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == (
        "payment for an order this conversation does not hold, check it by hand: "
        "event=evt_test_9 order=ORD-OTHER"
    )


def test_payment_processing_tells_the_customer(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionPaymentProcessing(), event("EXTERNAL_payment_processing", order)
    )
    assert "being processed" in messages[0]["text"] and events == []


def test_payment_failed_offers_a_new_link(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(ActionPaymentFailed(), event("EXTERNAL_payment_failed", order))
    assert slot_updates(events)["order_status"] == "payment_failed"
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/affirm", "/deny"]


def test_late_failure_or_expiry_never_undoes_a_payment(catalog: Catalog) -> None:
    paid = awaiting(catalog).moved_to(OrderStatus.PAID)
    assert run_action(ActionPaymentFailed(), event("EXTERNAL_payment_failed", paid)) == ([], [])
    expired = run_action(ActionCheckoutExpired(), event("EXTERNAL_checkout_expired", paid))
    assert expired == ([], [SlotSet(FOLLOWUP_SENT_SLOT, False)])  # nothing sent, nothing changed


def test_expiry_of_an_old_link_is_ignored(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = event("EXTERNAL_checkout_expired", order, checkout_session_id="cs_test_old")
    assert run_action(ActionCheckoutExpired(), tracker) == (
        [],
        [SlotSet(FOLLOWUP_SENT_SLOT, False)],
    )


def test_expired_link_marks_the_order_and_tries_a_fresh_one(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionCheckoutExpired(), event("EXTERNAL_checkout_expired", order)
    )
    assert slot_updates(events)["order_status"] == "expired"
    assert "isn't set up" in messages[0]["text"]  # no Stripe here: the retry is offered


def refund(order: Order, refunded_in_all: int, **entities: Any) -> Any:
    """A refund turn as the connector makes it from charge.refunded."""
    charge = {"amount": order.total, "payment_intent": order.payment_intent, **entities}
    return event("EXTERNAL_refunded", order, amount_refunded=refunded_in_all, **charge)


def test_full_refund_is_announced_and_recorded(catalog: Catalog) -> None:
    paid = awaiting(catalog).paid_by("cs_test_1", "pi_test_1")
    messages, events = run_action(ActionRefunded(), refund(paid, 2580))
    assert slot_updates(events)["order_status"] == "refunded"
    assert "refunded €25.80 for order" in messages[0]["text"]
    unpaid = awaiting(catalog)
    assert run_action(ActionRefunded(), refund(unpaid, 2580)) == ([], [])


def test_partial_refunds_say_what_this_one_gave_back_and_add_up(catalog: Catalog) -> None:
    paid = awaiting(catalog).paid_by("cs_test_1", "pi_test_1")
    messages, events = run_action(ActionRefunded(), refund(paid, 100))
    slots = slot_updates(events)
    assert (slots["order_status"], slots["order_refunded"]) == ("partially_refunded", 100)
    assert f"We've refunded €1.00 for order {paid.id}." in messages[0]["text"]
    assert "€1.00 of €25.80 is refunded" in messages[0]["text"]

    part = Order.from_slots({**paid.to_slots(), **slots})
    assert part is not None
    assert run_action(ActionRefunded(), refund(part, 100)) == ([], [])  # the same event again
    messages, events = run_action(ActionRefunded(), refund(part, 2580))
    slots = slot_updates(events)
    assert (slots["order_status"], slots["order_refunded"]) == ("refunded", 2580)
    assert f"We've refunded €24.80 for order {paid.id}." in messages[0]["text"]


def test_refund_of_a_duplicate_payment_or_without_amounts_is_not_announced(
    catalog: Catalog,
) -> None:
    paid = awaiting(catalog).paid_by("cs_test_1", "pi_test_1")
    duplicate = refund(paid, 2580, payment_intent="pi_test_duplicate")
    assert run_action(ActionRefunded(), duplicate) == ([], [])
    bare = event("EXTERNAL_refunded", paid)
    assert run_action(ActionRefunded(), bare) == ([], [])


@pytest.mark.parametrize(
    ("intent", "words"),
    [
        ("EXTERNAL_subscription_renewed", "renewed"),
        ("EXTERNAL_subscription_renewal_failed", "couldn't take"),
        ("EXTERNAL_subscription_updated", "updated"),
        ("EXTERNAL_subscription_cancelled", "cancelled"),
    ],
)
def test_subscription_events_get_one_message_each(intent: str, words: str) -> None:
    messages, events = run_action(ActionSubscriptionEvent(), make_tracker(intent))
    assert len(messages) == 1 and words in messages[0]["text"] and events == []


@pytest.mark.parametrize(
    ("ends_at", "day"),
    [
        (1798932600, "3 January 2027"),  # 23:30 UTC on the 2nd: 00:30 in Berlin (CET)
        (1814394600, "1 July 2027"),  # 22:30 UTC on 30 June: 00:30 in Berlin (CEST)
    ],
)
def test_the_ending_date_is_the_shops_local_date(ends_at: int, day: str) -> None:
    # data/shop.yml's opening_hours.time_zone is Europe/Berlin.
    ending = make_tracker("EXTERNAL_subscription_ending", {"subscription_ends_at": ends_at})
    (message,), _ = run_action(ActionSubscriptionEvent(), ending)
    assert (
        message["text"] == f"Your subscription is cancelled: it ends on {day} and will not renew."
    )


@pytest.mark.parametrize(
    "intent", ["EXTERNAL_subscription_cancelled", "EXTERNAL_subscription_renewed"]
)
def test_events_of_a_cancelled_duplicate_subscription_are_not_told(
    catalog: Catalog, intent: str
) -> None:
    paid = awaiting(catalog, **{"coffee-club": 1}).paid_by("cs_test_1", None, "sub_paying")
    duplicate = event(intent, paid, subscription_id="sub_duplicate")
    assert run_action(ActionSubscriptionEvent(), duplicate) == ([], [])
    own, _ = run_action(
        ActionSubscriptionEvent(), event(intent, paid, subscription_id="sub_paying")
    )
    assert len(own) == 1
    older, _ = run_action(  # an order paid before its subscription was recorded
        ActionSubscriptionEvent(), event(intent, paid.moved_to(OrderStatus.REFUNDED))
    )
    assert len(older) == 1
