"""The confirmation carries Stripe's receipt (payment mode: the charge's `receipt_url`) or
invoice link (subscription mode: the first invoice's `hosted_invoice_url`), read once the
payment is verified by a plain retrieve, from a second retrieve with those objects
expanded, best effort: a key that may not read them costs the receipt line, never the
confirmation. The Stripe emulator expands as Stripe does."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stripe

from actions.orders.model import Order
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payments import verification
from actions.payments.checkout_links import create_payment_link
from actions.payments.client import stripe_client
from actions.payments.verification import receipt_link
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, slot_updates
from tests.support.stripe_checkout import (
    SESSIONS,
    awaiting_order,
    paid_event,
    run,
    run_stripe_action,
)


def confirmation_of(fake: StripeEmulator, order: Order) -> str:
    """The confirmation text of `order`, paid on the emulator."""
    session_id = str(order.checkout_session_id)
    fake.complete(session_id)
    messages, _ = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    return str(messages[0]["text"])


def test_a_paid_orders_confirmation_ends_with_its_working_receipt_link(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    text = confirmation_of(stripe_env, order)
    *_, last = text.splitlines()
    assert last.startswith("Receipt: http://127.0.0.1:")
    url = last.removeprefix("Receipt: ")
    intent = stripe_env.sessions[str(order.checkout_session_id)]["payment_intent"]
    assert url.endswith("/receipts/ch_test_" + intent.rsplit("_", 1)[-1])
    page = requests.get(url, timeout=5)
    assert page.ok and "€" in page.text and "Paid" in page.text
    # The verifying retrieve is plain; the receipt's has the expansions.
    verify, receipt = stripe_env.requests_to("GET", f"{SESSIONS}/{order.checkout_session_id}")
    assert "expand" not in verify.params
    assert receipt.params["expand"] == ["payment_intent.latest_charge", "invoice"]


@pytest.mark.parametrize("unreadable", ["charge", "invoice"])
def test_a_key_that_may_not_read_receipts_still_confirms_the_payment(
    stripe_env: StripeEmulator, catalog: Catalog, unreadable: str
) -> None:
    stripe_env.account.unreadable.add(unreadable)  # a restricted key without that read
    product = "espresso-beans" if unreadable == "charge" else "coffee-club"
    order = Order.start(catalog, {product: 1})
    link = run(create_payment_link(order, CUSTOMER))
    order = order.with_link(link.session_id, link.url)
    stripe_env.complete(link.session_id)
    messages, events = run_stripe_action(
        ActionPaymentSucceeded(), paid_event(order, link.session_id)
    )
    (message,) = messages
    assert message["text"].startswith(f"Payment received, thank you! Order {order.id}")
    assert "Receipt:" not in message["text"] and "Invoice:" not in message["text"]
    assert slot_updates(events)["order_status"] == "paid"


def test_a_subscriptions_confirmation_carries_its_invoice_link(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = Order.start(catalog, {"coffee-club": 1})
    link = run(create_payment_link(order, CUSTOMER))
    text = confirmation_of(stripe_env, order.with_link(link.session_id, link.url))
    *_, last = text.splitlines()
    invoice = stripe_env.sessions[link.session_id]["invoice"]
    assert last.startswith("Invoice: ") and last.endswith(f"/invoices/{invoice}")
    assert requests.get(last.removeprefix("Invoice: "), timeout=5).ok


def test_a_hanging_receipt_retrieve_does_not_hold_up_the_confirmation(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verification, "RECEIPT_TIMEOUT_SECONDS", 0.5)
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    stripe_env.queue_delays(0, 4)  # the verifying retrieve answers, the receipt's hangs
    started = time.monotonic()
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    assert time.monotonic() - started < 3
    (message,) = messages
    assert message["text"].startswith(f"Payment received, thank you! Order {order.id}")
    assert "Receipt:" not in message["text"]
    assert slot_updates(events)["order_status"] == "paid"
    _, receipt = stripe_env.requests_to("GET", f"{SESSIONS}/{session_id}")
    assert receipt.params["expand"] == ["payment_intent.latest_charge", "invoice"]


@pytest.mark.parametrize(
    "url",
    ["http://pay.example.com/receipts/1", "javascript:alert(1)", "https://", "ftp://x/y", 7],
)
def test_a_receipt_link_that_is_not_https_is_left_out(url: Any) -> None:
    session = {"payment_intent": {"latest_charge": {"receipt_url": url}}}
    assert receipt_link(session) is None
    assert receipt_link({"invoice": {"hosted_invoice_url": url}}) is None


def test_no_receipt_when_stripe_gives_none() -> None:
    assert receipt_link({"payment_intent": "pi_1", "invoice": None}) is None
    assert receipt_link({"payment_intent": {"latest_charge": None}}) is None
    secure = "https://pay.stripe.com/receipts/payment/abc"
    assert receipt_link({"payment_intent": {"latest_charge": {"receipt_url": secure}}}) == secure


def retrieve(session_id: str, expand: list[str]) -> dict[str, Any]:
    """The session as the action server's client retrieves it, with `expand`."""

    async def call() -> dict[str, Any]:
        client = stripe_client()  # made on run's loop, after run cleared the cache
        found = await client.v1.checkout.sessions.retrieve_async(
            session_id, params={"expand": expand}
        )
        return dict(found.to_dict())

    return run(call())


def test_the_emulator_expands_the_named_paths_only(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    unpaid = retrieve(session_id, ["payment_intent.latest_charge", "invoice"])
    assert unpaid["payment_intent"] is None and unpaid["invoice"] is None  # null stays null
    stripe_env.complete(session_id)
    plain = retrieve(session_id, [])
    assert isinstance(plain["payment_intent"], str)
    intent_only = retrieve(session_id, ["payment_intent"])
    assert intent_only["payment_intent"]["object"] == "payment_intent"
    assert isinstance(intent_only["payment_intent"]["latest_charge"], str)
    both = retrieve(session_id, ["payment_intent.latest_charge"])
    charge = both["payment_intent"]["latest_charge"]
    assert charge["object"] == "charge" and charge["receipt_url"].startswith("http://127.0.0.1")
    assert stripe_env.sessions[session_id]["payment_intent"] == plain["payment_intent"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("line_items_x", "This property cannot be expanded (line_items_x)."),
        ("payment_intent.receipt_url", "This property cannot be expanded"),
        ("a.b.c.d.e", "You cannot expand more than 4 levels"),
    ],
)
def test_the_emulator_refuses_what_cannot_be_expanded(
    stripe_env: StripeEmulator, catalog: Catalog, path: str, message: str
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    with pytest.raises(stripe.InvalidRequestError) as refused:
        retrieve(str(order.checkout_session_id), [path])
    assert refused.value.http_status == 400 and message in str(refused.value.user_message)
