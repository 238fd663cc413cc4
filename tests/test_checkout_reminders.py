"""The reminder before a payment link expires, rule by rule: the link's turn asks the
connector for it (only with CHECKOUT_REMINDER_MINUTES on, only on WhatsApp), and the
reminder's turn sends one message per order, for the order's current unpaid link only,
never after the customer said stop. Actions run against the Stripe emulator on loopback."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.followup_actions import FOLLOWUP_SENT_SLOT, OPT_OUT_HINT, OPT_OUT_SLOT
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_link_actions import ActionCreatePaymentLink
from actions.reminder_actions import ActionCheckoutReminder
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from shop_contract.custom_messages import CHECKOUT_REMINDER_KEY
from tests.conftest import make_tracker, slot_updates
from tests.support.stripe_checkout import (
    awaiting_order,
    clear_payment_caches,
    creates,
    espresso_order,
    run_stripe_action,
)


@pytest.fixture
def reminders_on(stripe_env: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> StripeEmulator:
    """Links expire after 60 minutes; reminders 15 minutes before."""
    monkeypatch.setenv("CHECKOUT_EXPIRY_MINUTES", "60")
    monkeypatch.setenv("CHECKOUT_REMINDER_MINUTES", "15")
    clear_payment_caches()
    return stripe_env


def reminder_turn(order: Order, slots: dict[str, Any] | None = None, **entities: Any) -> Tracker:
    """EXTERNAL_checkout_reminder as the connector's sweep triggers it."""
    return make_tracker(
        "EXTERNAL_checkout_reminder",
        {"order_id": order.id, "checkout_session_id": order.checkout_session_id, **entities},
        slots={**order.to_slots(), **(slots or {})},
        channel="whatsapp",
    )


def test_a_link_asks_for_its_reminder_some_minutes_before_it_expires(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    draft = espresso_order(catalog)
    tracker = make_tracker("affirm", slots=draft.to_slots(), channel="whatsapp")
    messages, _ = run_stripe_action(ActionCreatePaymentLink(), tracker)
    [session] = reminders_on.sessions.values()
    link, request = messages
    assert link["custom"]["interactive"]["type"] == "cta_url"
    assert request["custom"][CHECKOUT_REMINDER_KEY] == {
        "order_id": draft.id,
        "session_id": session["id"],
        "remind_at": int(session["expires_at"]) - 15 * 60,
    }


def test_no_reminder_is_asked_for_when_off_or_off_whatsapp(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = espresso_order(catalog)
    on_whatsapp = make_tracker("affirm", slots=draft.to_slots(), channel="whatsapp")
    messages, _ = run_stripe_action(ActionCreatePaymentLink(), on_whatsapp)
    assert [m["custom"]["interactive"]["type"] for m in messages] == ["cta_url"]  # off: default

    monkeypatch.setenv("CHECKOUT_REMINDER_MINUTES", "15")
    clear_payment_caches()
    elsewhere = make_tracker("affirm", slots=draft.to_slots(), channel="rest")
    messages, _ = run_stripe_action(ActionCreatePaymentLink(), elsewhere)
    assert len(messages) == 1 and not messages[0]["custom"] and messages[0]["text"]


def test_the_reminder_sends_the_link_as_a_button_with_how_to_opt_out(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    made = len(creates(reminders_on))
    messages, events = run_stripe_action(ActionCheckoutReminder(), reminder_turn(order))
    (message,) = messages
    interactive = message["custom"]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["parameters"]["url"] == order.payment_link
    body = interactive["body"]["text"]
    assert order.summary(catalog) in body and OPT_OUT_HINT in body and order.id in body
    slots = slot_updates(events)
    assert (slots["order_status"], slots["order_reminded"]) == ("awaiting_payment", True)
    assert slots[FOLLOWUP_SENT_SLOT] is True  # it says "reply STOP": "no thanks" is stop
    assert len(creates(reminders_on)) == made  # the same link, no new one


def silent(
    order: Order, tracker: Tracker, action: ActionCheckoutReminder | None = None
) -> list[dict[str, Any]]:
    messages, events = run_stripe_action(action or ActionCheckoutReminder(), tracker)
    assert messages == []
    return events


def test_no_reminder_for_a_paid_or_cancelled_order(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    for status in (OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        done = order.moved_to(status)
        events = silent(done, reminder_turn(done))
        assert slot_updates(events) == {FOLLOWUP_SENT_SLOT: False}


def test_no_reminder_for_an_older_link_of_the_order(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    events = silent(order, reminder_turn(order, checkout_session_id="cs_test_older"))
    assert slot_updates(events) == {FOLLOWUP_SENT_SLOT: False}


def test_no_second_reminder_for_an_order(reminders_on: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(reminders_on, catalog)
    _, events = run_stripe_action(ActionCheckoutReminder(), reminder_turn(order))
    reminded = Order.from_slots({**order.to_slots(), **slot_updates(events)})
    assert reminded is not None and reminded.reminded
    silent(reminded, reminder_turn(reminded))


def test_no_reminder_after_the_customer_said_stop(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    events = silent(order, reminder_turn(order, slots={OPT_OUT_SLOT: True}))
    assert slot_updates(events) == {FOLLOWUP_SENT_SLOT: False}


def test_no_reminder_while_a_person_has_the_conversation(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    events = silent(order, reminder_turn(order, handed_over=True))  # the connector says so
    assert slot_updates(events) == {FOLLOWUP_SENT_SLOT: False}


def test_a_person_once_asked_for_does_not_silence_the_reminder(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(reminders_on, catalog)
    messages, _ = run_stripe_action(
        ActionCheckoutReminder(), reminder_turn(order, slots={"handover": "asked"})
    )
    assert len(messages) == 1


def at(seconds: float) -> ActionCheckoutReminder:
    """The reminder's action with its clock at `seconds` since the epoch."""
    return ActionCheckoutReminder(clock=lambda: datetime.fromtimestamp(seconds, timezone.utc))


def test_no_reminder_once_the_link_has_run_out_before_stripe_says_so(
    reminders_on: StripeEmulator, catalog: Catalog
) -> None:
    # After downtime the sweep runs overdue reminders while checkout.session.expired is
    # still on its way: "runs out soon" with a dead link would be wrong, the expiry's own
    # follow-up is the message then.
    order = awaiting_order(reminders_on, catalog)
    [session] = reminders_on.sessions.values()
    expires_at = int(session["expires_at"])
    for now in (expires_at, expires_at + 3600):
        events = silent(order, reminder_turn(order), at(now))
        assert slot_updates(events) == {FOLLOWUP_SENT_SLOT: False}  # "no" is just no
    messages, events = run_stripe_action(at(expires_at - 1), reminder_turn(order))
    assert len(messages) == 1 and slot_updates(events)["order_reminded"] is True
