"""What the action server does when Stripe refuses, fails or answers late: which errors are
retried (under the same idempotency key), and what the customer is told."""

from __future__ import annotations

import secrets
import time

import pytest
import stripe

from actions.payments.checkout_links import LINK_FAILED, create_payment_link, idempotency_key
from actions.payments.client import STRIPE_NETWORK_RETRIES
from actions.payments.errors import PaymentError
from sandbox.stripe_api import StripeEmulator, lock_timeout
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER
from tests.support.stripe_checkout import (
    ESPRESSO_PRICE,
    clear_payment_caches,
    creates,
    espresso_order,
    run,
)

# --- what Stripe refuses -----------------------------------------------------------------


def test_a_price_stripe_does_not_know_fails_without_leaving_a_session(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    del stripe_env.prices[ESPRESSO_PRICE]
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert caught.value.customer_message == LINK_FAILED
    assert stripe_env.sessions == {}
    assert len(creates(stripe_env)) == 1  # a 400 is not retried


def test_a_wrong_key_is_refused(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_" + secrets.token_hex(12))
    clear_payment_caches()
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.AuthenticationError)
    assert stripe_env.sessions == {}
    assert len(stripe_env.requests) == 1


# --- retries and timeouts ----------------------------------------------------------------


def test_a_server_error_is_retried_with_the_same_idempotency_key(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    stripe_env.queue_failures(500)
    order = espresso_order(catalog)
    link = run(create_payment_link(order, CUSTOMER))

    assert list(stripe_env.sessions) == [link.session_id]
    keys = [r.idempotency_key for r in creates(stripe_env)]
    assert keys == [idempotency_key(order)] * 2


def test_three_server_errors_fail_with_the_customer_message(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert caught.value.customer_message == LINK_FAILED
    assert len(creates(stripe_env)) == 1 + STRIPE_NETWORK_RETRIES
    assert stripe_env.sessions == {}


def test_a_card_error_is_not_retried(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    stripe_env.queue_failures(402)
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.CardError)
    assert caught.value.customer_message == LINK_FAILED
    assert len(creates(stripe_env)) == 1


def test_a_lock_timeout_429_is_retried(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    stripe_env.queue_failures(lock_timeout())  # 429 with Stripe-Should-Retry: true
    link = run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert list(stripe_env.sessions) == [link.session_id]
    assert len(creates(stripe_env)) == 2


def test_a_rate_limit_429_is_not_retried_by_stripe_python(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    # stripe-python 16 retries a 429 only when Stripe sends Stripe-Should-Retry: true (as on
    # lock_timeout); a plain rate-limit 429 surfaces at once as the customer's "try again".
    stripe_env.queue_failures(429)
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.RateLimitError)
    assert len(creates(stripe_env)) == 1


def test_no_answer_within_the_timeout_is_a_payment_error(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actions.payments.client.STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0, 2.0, 2.0)
    started = time.monotonic()
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.APIConnectionError)
    assert caught.value.customer_message == LINK_FAILED
    assert len(creates(stripe_env)) == 1 + STRIPE_NETWORK_RETRIES
    assert time.monotonic() - started < 5.0


def test_a_late_answer_is_retried_into_the_session_stripe_created(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actions.payments.client.STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0)  # Stripe created the session; the answer came too late
    link = run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert list(stripe_env.sessions) == [link.session_id]
    assert len(creates(stripe_env)) == 2
