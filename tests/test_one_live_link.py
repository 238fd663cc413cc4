"""One order that can be paid per customer: a second WhatsApp Flow stops the first order's
link, and a Flow completion run again reuses (or renews) its own link."""

from __future__ import annotations

import time

import pytest

from actions.flow_actions import ActionFlowStep
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_link_actions import ActionCreatePaymentLink
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, slot_updates
from tests.support.stripe_checkout import (
    SESSIONS,
    awaiting_order,
    flow_completion,
    run_stripe_action,
)


def test_a_second_flow_stops_the_first_orders_link_and_keeps_it(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert stripe_env.sessions[str(first.checkout_session_id)]["status"] == "expired"
    assert f"Your earlier order {first.id} wasn't paid" in messages[0]["text"]
    slots = slot_updates(events)
    assert slots["orders"][first.id]["order_status"] == "cancelled"
    assert slots["order_id"] != first.id and slots["order_status"] == "awaiting_payment"
    assert slots["orders"][slots["order_id"]]["order_flow_token"] == "tok-2"


def test_a_second_flow_does_not_replace_an_order_paid_meanwhile(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(first.checkout_session_id))
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert events == [] and len(stripe_env.sessions) == 1
    assert f"Your payment for order {first.id} has just gone through" in messages[0]["text"]


def test_a_second_flow_when_stripe_cannot_stop_the_first_link_keeps_the_new_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    stripe_env.queue_failures(500, 500, 500)  # the expire and its two retries
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    slots = {**first.to_slots(), **slot_updates(events)}
    draft = Order.from_slots(slots)
    assert draft is not None and draft.id != first.id
    assert (draft.status, draft.flow_token) == (OrderStatus.DRAFT, "tok-2")
    assert [(line.product_id, line.quantity) for line in draft.lines] == [("green-tea", 1)]
    assert slots["orders"][first.id]["order_status"] == "awaiting_payment"
    assert f"Your order {draft.id} is saved" in messages[-1]["text"]
    assert messages[-1]["buttons"] == [{"title": "Try again", "payload": "/affirm"}]
    assert len(stripe_env.sessions) == 1

    again = make_tracker("flow_completed", flow_completion("tok-2"), slots=slots)
    assert run_stripe_action(ActionFlowStep(), again) == ([], [])  # one order per token

    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=slots)
    )
    updated = {**slots, **slot_updates(events)}
    assert stripe_env.sessions[str(first.checkout_session_id)]["status"] == "expired"
    assert updated["orders"][first.id]["order_status"] == "cancelled"
    assert (updated["order_id"], updated["order_status"]) == (draft.id, "awaiting_payment")
    assert stripe_env.sessions[updated["checkout_session_id"]]["url"] in messages[-1]["text"]


def test_a_flow_completion_run_again_after_a_failed_turn_reuses_its_link(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-retry"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    # The turn failed after the link went out: its events were not kept, the completion
    # runs again on the same tracker, minutes later (another expires_at for the same key).
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert again["order_id"] == first["order_id"]
    assert again["checkout_session_id"] == first["checkout_session_id"]
    assert len(stripe_env.sessions) == 1 and stripe_env.requests_to("GET", SESSIONS)
    assert stripe_env.sessions[first["checkout_session_id"]]["url"] in messages[0]["text"]


def test_an_open_session_of_the_same_order_id_for_another_amount_is_not_reused(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-other-amount"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    stripe_env.sessions[first["checkout_session_id"]]["amount_subtotal"] += 100  # other lines
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert again["order_id"] == first["order_id"]
    assert again["checkout_session_id"] != first["checkout_session_id"]
    assert again["order_attempt"] == 2


def test_a_flow_completion_run_again_after_its_link_expired_gets_the_next_attempt(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-expired"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    stripe_env.expire(first["checkout_session_id"])
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert (again["order_id"], again["order_attempt"]) == (first["order_id"], 2)
    assert stripe_env.sessions[again["checkout_session_id"]]["status"] == "open"
