"""The Checkout Session the action server creates: the request Stripe receives, one session
per order attempt (idempotency), against the Stripe emulator on loopback."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from actions.orders import basket
from actions.orders.model import Order
from actions.orders.text_order import Wanted
from actions.payments.checkout_links import checkout_params, create_payment_link, idempotency_key
from actions.payments.client import STRIPE_API_VERSION
from actions.payments.errors import PaymentError
from actions.settings import DEFAULT_RETURN_URL, StripeSettings
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from shop_contract.shop import default_shop
from tests.conftest import CUSTOMER
from tests.support.stripe_checkout import (
    COFFEE_CLUB_PRICE,
    ESPRESSO_PRICE,
    creates,
    espresso_order,
    run,
)

# --- the request Stripe receives ---------------------------------------------------------


def test_payment_order_creates_the_session_stripe_expects(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = espresso_order(catalog)
    started = time.time()
    link = run(create_payment_link(order, CUSTOMER))

    [session] = stripe_env.sessions.values()
    assert (link.session_id, link.url) == (session["id"], session["url"])
    assert link.session_id.startswith("cs_test_")
    assert session["amount_total"] == order.total == 2580
    assert session["status"] == "open"

    [request] = creates(stripe_env)
    metadata = {"whatsapp_user_id": CUSTOMER, "order_id": order.id}
    params = dict(request.params)
    expires_at = int(params.pop("expires_at"))
    assert params == {
        "mode": "payment",
        "line_items": [{"price": ESPRESSO_PRICE, "quantity": "2"}],
        "client_reference_id": order.id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": DEFAULT_RETURN_URL,
        "cancel_url": DEFAULT_RETURN_URL,
        "after_expiration": {"recovery": {"enabled": "true", "allow_promotion_codes": "false"}},
        "customer_creation": "always",  # one Stripe Customer per WhatsApp customer
    }
    assert started + 3600 - 2 <= expires_at <= time.time() + 3600
    assert request.headers["Idempotency-Key"] == idempotency_key(order)
    assert request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert request.headers["Authorization"] == f"Bearer {stripe_env.api_key}"


def test_subscription_order_uses_subscription_mode(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = Order.start(catalog, {"coffee-club": 1})
    run(create_payment_link(order, CUSTOMER))

    [request] = creates(stripe_env)
    metadata = {"whatsapp_user_id": CUSTOMER, "order_id": order.id}
    assert request.params["mode"] == "subscription"
    assert request.params["line_items"] == [{"price": COFFEE_CLUB_PRICE, "quantity": "1"}]
    assert request.params["subscription_data"] == {"metadata": metadata}
    assert "payment_intent_data" not in request.params
    [session] = stripe_env.sessions.values()
    assert session["mode"] == "subscription" and session["amount_total"] == 1490


def test_a_subscription_mixed_with_one_off_products_is_refused_with_no_session(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    # Stripe offers shipping options in payment mode only: the beans' delivery could not be
    # charged on the subscription's first invoice, so the mix is refused (basket.check_lines
    # tells the customer before an order gets here).
    order = Order.start(catalog, {"coffee-club": 1, "espresso-beans": 1})
    with pytest.raises(PaymentError) as refused:
        run(create_payment_link(order, CUSTOMER))
    assert "subscription is paid on its own" in refused.value.customer_message
    assert stripe_env.sessions == {}


def text_order(catalog: Catalog, items: dict[str, int], country: str = "Germany") -> Order:
    wanted = [Wanted(product, quantity) for product, quantity in items.items()]
    return basket.started(catalog, wanted, default_shop().destination(country))


def test_every_line_is_a_line_item_and_delivery_the_shipping_option(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = text_order(catalog, {"espresso-beans": 1, "filter-coffee": 2}, "Austria")
    run(create_payment_link(order, CUSTOMER))

    [request] = creates(stripe_env)
    assert request.params["line_items"] == [
        {"price": ESPRESSO_PRICE, "quantity": "1"},
        {"price": "price_1QShopFilter250", "quantity": "2"},
    ]
    assert request.params["shipping_address_collection"] == {"allowed_countries": ["AT"]}
    assert request.params["shipping_options"] == [
        {
            "shipping_rate_data": {
                "type": "fixed_amount",
                "display_name": "Delivery to Austria",
                "fixed_amount": {"amount": "790", "currency": "eur"},
                "delivery_estimate": {
                    "minimum": {"unit": "business_day", "value": "2"},
                    "maximum": {"unit": "business_day", "value": "4"},
                },
            }
        }
    ]
    [session] = stripe_env.sessions.values()
    assert session["amount_subtotal"] == order.subtotal == 1290 + 2 * 1150
    assert session["total_details"]["amount_shipping"] == order.shipping == 790
    assert session["shipping_cost"]["amount_total"] == 790
    assert session["amount_total"] == order.total == 1290 + 2300 + 790


def test_delivery_is_free_from_the_destinations_threshold(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    germany = default_shop().destination("Germany")
    assert germany is not None and germany.free_from == 4000
    order = text_order(catalog, {"espresso-beans": 2, "decaf-beans": 1})  # €39.70: not yet
    assert order.shipping == germany.cost
    order = text_order(catalog, {"espresso-beans": 2, "decaf-beans": 1, "green-tea": 1})
    assert (order.subtotal, order.shipping, order.total) == (4860, 0, 4860)
    run(create_payment_link(order, CUSTOMER))
    [request] = creates(stripe_env)
    rate = request.params["shipping_options"][0]["shipping_rate_data"]
    assert rate["fixed_amount"]["amount"] == "0"
    assert request.params["shipping_address_collection"] == {"allowed_countries": [germany.code]}


def test_what_does_not_ship_has_no_shipping_option(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    for items in ({"gift-card": 2}, {"coffee-club": 1}):
        order = text_order(catalog, items)
        assert (order.destination, order.shipping) == (None, 0)
        run(create_payment_link(order, CUSTOMER))
    for request in creates(stripe_env):
        assert "shipping_options" not in request.params
        assert "shipping_address_collection" not in request.params


def test_the_pinned_api_version_is_the_sdks_own() -> None:
    # Bumping stripe-python changes its default version: review the shapes we read, then bump.
    assert stripe.api_version == STRIPE_API_VERSION


def test_checkout_params_are_session_create_params(catalog: Catalog) -> None:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)})
    assert settings is not None
    order = replace(espresso_order(catalog), attempt_at=1_700_000_000)
    params: SessionCreateParams = checkout_params(order, CUSTOMER, catalog, settings)
    assert {"mode", "line_items", "success_url", "expires_at", "client_reference_id"} <= set(params)
    assert params["expires_at"] == 1_700_000_000 + 60 * 60
    assert params["line_items"] == [{"price": ESPRESSO_PRICE, "quantity": 2}]


# --- idempotency -------------------------------------------------------------------------


def test_the_same_attempt_twice_is_the_same_session_and_the_next_attempt_a_new_one(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = time.time()
    monkeypatch.setattr(
        "actions.payments.checkout_links.time", SimpleNamespace(time=lambda: frozen)
    )
    order = espresso_order(catalog)
    first = run(create_payment_link(order, CUSTOMER))
    again = run(create_payment_link(order, CUSTOMER))
    assert again == first
    assert len(stripe_env.sessions) == 1

    next_attempt = run(create_payment_link(replace(order, attempt=order.attempt + 1), CUSTOMER))
    assert next_attempt.session_id != first.session_id
    assert len(stripe_env.sessions) == 2
    keys = [r.idempotency_key for r in creates(stripe_env)]
    assert keys == [f"checkout-{order.id}-1"] * 2 + [f"checkout-{order.id}-2"]


def test_the_same_attempt_a_second_later_is_still_the_same_session(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: expires_at used to be counted from the request's time, so a retry of the
    # same attempt carried other parameters under the same key and Stripe refused it.
    now = [time.time()]
    monkeypatch.setattr(
        "actions.payments.checkout_links.time", SimpleNamespace(time=lambda: now[0])
    )
    order = espresso_order(catalog)
    first = run(create_payment_link(order, CUSTOMER))
    now[0] += 1.1
    assert run(create_payment_link(order, CUSTOMER)) == first
    sent, resent = creates(stripe_env)
    assert resent.params == sent.params  # what Stripe compares under one idempotency key
