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

from actions.orders.model import Order
from actions.payments.checkout_links import checkout_params, create_payment_link, idempotency_key
from actions.payments.client import STRIPE_API_VERSION
from actions.settings import DEFAULT_RETURN_URL, StripeSettings
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
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


def test_subscription_with_a_one_time_product_is_one_subscription_session(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = Order.start(catalog, {"coffee-club": 1, "espresso-beans": 1})
    run(create_payment_link(order, CUSTOMER))

    [session] = stripe_env.sessions.values()
    assert session["mode"] == "subscription"
    assert session["amount_total"] == order.total == 1490 + 1290


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
