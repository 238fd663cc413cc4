"""The payment link action against the Stripe emulator: the link sent, Stripe down, a link
that expired or was declined, and one live link per order."""

from __future__ import annotations

import pytest

from actions.followup_actions import ActionCheckoutExpired
from actions.orders.states import OrderStatus
from actions.payment_link_actions import ActionCreatePaymentLink
from actions.payments.checkout_links import LINK_FAILED, idempotency_key
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, slot_updates
from tests.support.stripe_checkout import (
    PAID_ALREADY,
    awaiting_order,
    creates,
    espresso_order,
    run_stripe_action,
)

# --- through the actions -----------------------------------------------------------------


def test_payment_link_action_sends_the_link_and_awaits_payment(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    draft = espresso_order(catalog)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=draft.to_slots())
    )
    [session] = stripe_env.sessions.values()
    slots = slot_updates(events)
    assert slots["order_status"] == "awaiting_payment"
    assert slots["checkout_session_id"] == session["id"]
    assert slots["payment_link"] == session["url"]
    [message] = messages
    assert draft.summary(catalog) in message["text"]
    assert session["url"] in message["text"]


def test_payment_link_action_on_whatsapp_sends_a_cta_button(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    draft = espresso_order(catalog)
    tracker = make_tracker("affirm", slots=draft.to_slots(), channel="whatsapp")
    messages, _ = run_stripe_action(ActionCreatePaymentLink(), tracker)
    [session] = stripe_env.sessions.values()
    interactive = messages[0]["custom"]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["parameters"]["url"] == session["url"]
    assert draft.summary(catalog) in interactive["body"]["text"]


def test_payment_link_action_when_stripe_is_down_keeps_the_draft(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    stripe_env.queue_failures(500, 500, 500)
    draft = espresso_order(catalog)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=draft.to_slots())
    )
    assert slot_updates(events)["order_status"] == "draft"
    assert slot_updates(events)["checkout_session_id"] is None
    assert messages[0]["buttons"] == [{"title": "Try again", "payload": "/affirm"}]
    assert LINK_FAILED in messages[0]["text"]
    assert stripe_env.sessions == {}


def test_try_again_after_a_timed_out_link_gets_the_session_stripe_created(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: expires_at used to be counted from the request's time, so a retry of the
    # same attempt carried other parameters under the same key and Stripe refused it.
    monkeypatch.setattr("actions.payments.client.STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0, 2.0, 2.0)
    draft = espresso_order(catalog)
    tracker = make_tracker("affirm", slots=draft.to_slots())
    _, events = run_stripe_action(ActionCreatePaymentLink(), tracker)
    assert slot_updates(events)["order_status"] == "draft"
    [created] = stripe_env.sessions

    messages, events = run_stripe_action(ActionCreatePaymentLink(), tracker)
    assert slot_updates(events)["checkout_session_id"] == created, messages[0]["text"]


def test_expired_link_gets_a_new_session_for_a_new_attempt(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    draft = espresso_order(catalog)
    _, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=draft.to_slots())
    )
    slots = {**draft.to_slots(), **slot_updates(events)}
    old_session = slots["checkout_session_id"]
    stripe_env.expire(old_session)

    tracker = make_tracker(
        "EXTERNAL_checkout_expired",
        {"order_id": draft.id, "checkout_session_id": old_session},
        slots=slots,
    )
    messages, events = run_stripe_action(ActionCheckoutExpired(), tracker)
    updated = slot_updates(events)
    assert updated["order_status"] == "awaiting_payment"
    assert updated["order_attempt"] == 2
    assert updated["checkout_session_id"] not in (None, old_session)
    new_session = stripe_env.sessions[updated["checkout_session_id"]]
    assert new_session["status"] == "open"
    assert updated["payment_link"] == new_session["url"]
    assert new_session["url"] in messages[0]["text"]
    assert "expired" in messages[0]["text"]
    keys = [r.idempotency_key for r in creates(stripe_env)]
    assert keys == [idempotency_key(draft), f"checkout-{draft.id}-2"]


# --- one live link per order ------------------------------------------------------------


def test_a_new_link_after_a_decline_expires_the_previous_session(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    failed = order.moved_to(OrderStatus.PAYMENT_FAILED)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    slots = slot_updates(events)
    old, new = str(order.checkout_session_id), slots["checkout_session_id"]
    assert stripe_env.sessions[old]["status"] == "expired"
    assert stripe_env.sessions[new]["status"] == "open"
    assert slots["order_sessions"] == [old, new]
    assert stripe_env.sessions[new]["url"] in messages[0]["text"]


def test_no_new_link_when_the_previous_one_was_paid_meanwhile(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    failed = order.moved_to(OrderStatus.PAYMENT_FAILED)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    assert events == [] and PAID_ALREADY in messages[0]["text"]
    assert len(stripe_env.sessions) == 1
