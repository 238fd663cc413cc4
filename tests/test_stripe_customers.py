"""Which Stripe Customer a payment link pays as, when the remembered one is gone at Stripe
or Stripe Tax needs the customer's address, and which Customer each paid order keeps: the
first remembered one is reused at Checkout, and a subscription's portal opens as the
Customer that paid it. Through the real client against the Stripe emulator."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from actions.orders import basket
from actions.orders.model import Order
from actions.orders.text_order import Wanted
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payment_link_actions import ActionCreatePaymentLink
from actions.payments.checkout_links import create_payment_link, customer_missing
from actions.subscription_help import ActionSubscriptionHelp
from sandbox.stripe_api import StripeApiError, StripeEmulator
from sandbox.stripe_api.customers import new_customer
from shop_contract.catalog import Catalog
from shop_contract.shop import default_shop
from shop_contract.stripe_metadata import STRIPE_CUSTOMER_SLOT
from tests.conftest import CUSTOMER, make_tracker, slot_updates
from tests.support.stripe_checkout import (
    SESSIONS,
    clear_payment_caches,
    paid_event,
    run,
    run_stripe_action,
)

PORTAL = "/v1/billing_portal/sessions"


def paid(fake: StripeEmulator, order: Order, slots: dict[str, Any]) -> dict[str, Any]:
    """`order`'s link paid on the emulator and confirmed with the conversation's `slots`;
    the slots after the confirmation (the order's record as confirmed among them)."""
    session_id = str(order.checkout_session_id)
    fake.complete(session_id)
    tracker = paid_event(order, session_id)
    tracker.slots.update({STRIPE_CUSTOMER_SLOT: slots.get(STRIPE_CUSTOMER_SLOT)})
    _, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    return {**slots, **order.to_slots(), **slot_updates(events)}


def linked(catalog: Catalog, product: str, customer: str | None = None) -> Order:
    order = Order.start(catalog, {product: 1})
    link = run(create_payment_link(order, CUSTOMER, customer))
    return order.with_link(link.session_id, link.url)


def test_a_remembered_customer_stripe_no_longer_has_is_dropped_and_the_link_still_made(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = paid(stripe_env, linked(catalog, "espresso-beans"), {})
    gone = first[STRIPE_CUSTOMER_SLOT]
    del stripe_env.account.customers[gone]  # deleted in the Dashboard (or a test-mode id)
    draft = Order.start(catalog, {"espresso-beans": 1})
    tracker = make_tracker(
        "affirm", slots={**draft.to_slots(), STRIPE_CUSTOMER_SLOT: gone}, channel="whatsapp"
    )
    messages, events = run_stripe_action(ActionCreatePaymentLink(), tracker)
    refused, made = stripe_env.requests_to("POST", SESSIONS)[-2:]
    assert refused.params["customer"] == gone
    assert "customer" not in made.params and made.params["customer_creation"] == "always"
    assert refused.idempotency_key != made.idempotency_key
    (session,) = [s for s in stripe_env.sessions.values() if s["client_reference_id"] == draft.id]
    assert messages[0]["custom"]["interactive"]["action"]["parameters"]["url"] == session["url"]
    assert slot_updates(events)[STRIPE_CUSTOMER_SLOT] is None  # forgotten
    # Paid, the new Customer is remembered in its place.
    order = Order.from_slots({**draft.to_slots(), **slot_updates(events)})
    assert order is not None
    after = paid(stripe_env, order, {STRIPE_CUSTOMER_SLOT: None})
    assert after[STRIPE_CUSTOMER_SLOT] == stripe_env.sessions[session["id"]]["customer"] != gone


def test_the_emulator_refuses_an_unknown_customer_as_stripe_does(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    with pytest.raises(StripeApiError) as refused:
        stripe_env.account.create_session(
            {
                "mode": "payment",
                "line_items": [{"price": "price_1QShopEspresso250", "quantity": "1"}],
                "success_url": "https://example.com/ok",
                "customer": "cus_test_deleted",
            }
        )
    assert refused.value.body["code"] == "resource_missing"
    assert refused.value.body["param"] == "customer"


def test_a_returning_customer_with_stripe_tax_may_have_the_page_address_saved(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = paid(stripe_env, linked(catalog, "espresso-beans"), {})
    customer = slots[STRIPE_CUSTOMER_SLOT]  # made by Checkout: no address on it
    monkeypatch.setenv("STRIPE_AUTOMATIC_TAX", "true")
    clear_payment_caches()
    order = linked(catalog, "espresso-beans", customer)
    created = stripe_env.requests_to("POST", SESSIONS)[-1]
    assert created.params["customer"] == customer
    assert created.params["customer_update"] == {"address": "auto"}
    assert created.params["automatic_tax"] == {"enabled": "true"}
    after = paid(stripe_env, order, slots)
    assert stripe_env.sessions[str(order.checkout_session_id)]["total_details"]["amount_tax"] > 0
    assert after[STRIPE_CUSTOMER_SLOT] == customer
    assert stripe_env.account.customers[customer]["address"] == {"country": "DE"}  # saved
    # Without customer_update, and no address on the Customer, Stripe (and the emulator)
    # refuse the session.
    customer = new_customer(stripe_env.account.customers, {})["id"]
    params = {
        "mode": "payment",
        "line_items": [{"price": "price_1QShopEspresso250", "quantity": "1"}],
        "success_url": "https://example.com/ok",
        "customer": customer,
        "automatic_tax": {"enabled": "true"},
    }
    with pytest.raises(StripeApiError) as refused:
        stripe_env.account.create_session(params)
    assert refused.value.body["code"] == "customer_tax_location_invalid"
    with pytest.raises(StripeApiError) as refused:
        stripe_env.account.create_session(
            {k: v for k, v in params.items() if k != "customer"}
            | {"customer_update": {"address": "auto"}}
        )
    assert refused.value.body["param"] == "customer_update"


def test_a_shipped_order_for_a_returning_customer_saves_the_shipping_address_too(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    wanted = [Wanted("espresso-beans", 1)]
    order = basket.started(catalog, wanted, default_shop().destination("Germany"))
    customer = new_customer(stripe_env.account.customers, {})["id"]
    run(create_payment_link(order, CUSTOMER, customer))
    created = stripe_env.requests_to("POST", SESSIONS)[-1]
    assert created.params["customer_update"] == {"address": "auto", "shipping": "auto"}


def test_a_later_paid_older_link_keeps_the_first_customer_and_the_portal_its_own(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    # Both links made before any Customer existed: each payment makes its own.
    subscription = linked(catalog, "coffee-club")
    one_off = linked(catalog, "espresso-beans")
    slots = paid(stripe_env, subscription, {})
    first = slots[STRIPE_CUSTOMER_SLOT]
    subscribed = Order.from_slots(slots)
    assert subscribed is not None and subscribed.customer == first
    later = paid(stripe_env, one_off, slots)
    second = stripe_env.sessions[str(one_off.checkout_session_id)]["customer"]
    assert second != first and later[STRIPE_CUSTOMER_SLOT] == first  # the first stays
    assert Order.from_slots(later) is not None and later["order_customer"] == second
    # The subscription's portal opens as its own Customer, whatever the slot says.
    held = {**subscribed.to_slots(), STRIPE_CUSTOMER_SLOT: second}
    held["orders"] = {subscribed.id: subscribed.to_slots()}
    tracker = make_tracker("subscription_cancel", slots=held, channel="whatsapp")
    (message,), _ = run_stripe_action(ActionSubscriptionHelp(), tracker)
    (created,) = stripe_env.requests_to("POST", PORTAL)
    assert created.params["customer"] == first
    assert message["custom"]["interactive"]["action"]["parameters"]["display_text"] == (
        "Cancel subscription"
    )


@pytest.mark.parametrize(
    ("param", "code", "gone"),
    [
        ("customer", "resource_missing", True),
        ("customer", "parameter_invalid_string", False),  # refused, yet not gone
        ("customer", None, False),
        ("return_url", "resource_missing", False),
    ],
)
def test_only_stripes_resource_missing_on_customer_means_the_customer_is_gone(
    param: str, code: str | None, gone: bool
) -> None:
    error = stripe.InvalidRequestError("refused", param, code=code, http_status=400)  # type: ignore[no-untyped-call]
    assert customer_missing(error) is gone
    assert customer_missing(stripe.APIConnectionError("down")) is False  # type: ignore[no-untyped-call]
