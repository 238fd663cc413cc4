"""Stripe Tax and promotion codes, switched on by settings: the Checkout Session asks for them,
the Stripe emulator charges them as Stripe does, and the confirmation shows what was charged."""

from __future__ import annotations

import pytest
import requests

from actions.orders.model import Order
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payments.checkout_links import create_payment_link
from actions.payments.verification import CheckoutPayment, payment_mismatch
from sandbox.stripe_api import StripeEmulator
from sandbox.stripe_api.errors import StripeApiError
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, slot_updates
from tests.support.stripe_checkout import (
    clear_payment_caches,
    creates,
    espresso_order,
    paid_event,
    run,
    run_stripe_action,
)


@pytest.fixture
def taxed(stripe_env: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> StripeEmulator:
    monkeypatch.setenv("STRIPE_AUTOMATIC_TAX", "true")
    monkeypatch.setenv("STRIPE_PROMOTION_CODES", "true")
    clear_payment_caches()
    return stripe_env


def linked(catalog: Catalog) -> Order:
    order = espresso_order(catalog)  # 2 × €12.90, nothing delivered
    link = run(create_payment_link(order, CUSTOMER))
    return order.with_link(link.session_id, link.url)


def test_the_session_asks_stripe_for_tax_and_codes_only_when_switched_on(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    linked(catalog)
    assert not {"automatic_tax", "allow_promotion_codes"} & set(creates(stripe_env)[0].params)
    monkeypatch.setenv("STRIPE_AUTOMATIC_TAX", "true")
    monkeypatch.setenv("STRIPE_PROMOTION_CODES", "true")
    clear_payment_caches()
    linked(catalog)
    params = creates(stripe_env)[1].params
    assert params["automatic_tax"] == {"enabled": "true"}
    assert params["allow_promotion_codes"] == "true"


def test_the_confirmation_shows_the_discount_and_tax_stripe_charged(
    taxed: StripeEmulator, catalog: Catalog
) -> None:
    order = linked(catalog)
    session_id = str(order.checkout_session_id)
    taxed.enter_promotion_code(session_id, "sandbox10")
    taxed.complete(session_id)
    session = taxed.sessions[session_id]
    subtotal, details = session["amount_subtotal"], session["total_details"]
    assert details["amount_discount"] == subtotal // 10
    taxable = subtotal - details["amount_discount"] + details["amount_shipping"]
    assert details["amount_tax"] == taxable // 10 > 0
    assert session["amount_total"] == taxable + details["amount_tax"] != order.total

    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    assert slot_updates(events)["order_status"] == "paid"
    text = messages[0]["text"]
    assert "Discount — −€2.58" in text and f"Tax — €{details['amount_tax'] / 100:.2f}" in text
    assert f"€{session['amount_total'] / 100:.2f}" in text


def test_a_code_is_refused_where_stripe_refuses_it(taxed: StripeEmulator, catalog: Catalog) -> None:
    order = linked(catalog)
    with pytest.raises(StripeApiError, match="invalid"):
        taxed.enter_promotion_code(str(order.checkout_session_id), "FREE100")
    with pytest.raises(StripeApiError, match="one of these parameters"):
        taxed.account.create_session(
            {
                **creates(taxed)[0].params,
                "discounts": [{"coupon": "x"}],
            }
        )


def test_the_hosted_page_takes_a_code_and_charges_tax(
    taxed: StripeEmulator, catalog: Catalog
) -> None:
    order = linked(catalog)
    url = str(order.payment_link)
    assert 'id="promotion_code"' in requests.get(url, timeout=5).text
    refused = requests.post(url, data={"outcome": "pay", "promotion_code": "NOPE"}, timeout=5)
    assert "This code is invalid." in refused.text
    assert taxed.sessions[str(order.checkout_session_id)]["status"] == "open"
    paid = requests.post(url, data={"outcome": "pay", "promotion_code": "SANDBOX10"}, timeout=5)
    session = taxed.sessions[str(order.checkout_session_id)]
    assert session["status"] == "complete" and session["total_details"]["amount_discount"] == 258
    assert f"€{session['amount_total'] / 100:.2f}" in paid.text
    # The page lists what is paid for, then what Stripe added and took off.
    for row in ("2 × Espresso Beans", "€25.80", "Discount", "−€2.58", "Tax"):
        assert row in paid.text, row


def test_a_page_without_codes_has_no_code_field(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = linked(catalog)
    assert 'id="promotion_code"' not in requests.get(str(order.payment_link), timeout=5).text


@pytest.mark.parametrize(
    ("discount", "tax", "charged", "refused"),
    [
        (258, 232, -258 + 232, None),  # a code and exclusive tax, as Stripe reports them
        (258, 232, -258, None),  # tax included in the prices
        (2580, 0, -2580, None),  # a code the shop made for the whole amount
        (0, 0, -1, "amount"),  # a cent short, no discount to explain it
        (0, -100, -100, "out of range"),  # no negative tax
        (2581, 0, -2581, "out of range"),  # no discount above the order
    ],
)
def test_stripes_discount_and_tax_explain_the_total_within_bounds(
    stripe_env: StripeEmulator,
    catalog: Catalog,
    discount: int,
    tax: int,
    charged: int,
    refused: str | None,
) -> None:
    order = espresso_order(catalog)
    checkout = CheckoutPayment(
        session_id="cs_test_1",
        status="complete",
        payment_status="paid",
        amount_total=order.total + charged,
        currency="eur",
        livemode=False,
        order_id=order.id,
        payment_intent="pi_test_1",
        subscription=None,
        amount_subtotal=order.subtotal,
        amount_discount=discount,
        amount_tax=tax,
    )
    mismatch = payment_mismatch(checkout, order)
    assert (mismatch is None) if refused is None else (refused in str(mismatch))
