"""The Stripe settings read from the environment, and what they do to the Checkout Session."""

from __future__ import annotations

import secrets
import time

import pytest
import stripe

from actions.payments.checkout_links import create_payment_link
from actions.payments.errors import PaymentsNotConfigured
from actions.settings import DEFAULT_EXPIRY_MINUTES, StripeSettings
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from shop_contract.env_settings import ConfigError
from tests.conftest import CUSTOMER
from tests.support.stripe_checkout import clear_payment_caches, creates, espresso_order, run


@pytest.mark.parametrize("minutes", [30, 90, 24 * 60])
def test_checkout_expiry_minutes_is_honoured(
    stripe_env: StripeEmulator,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    minutes: int,
) -> None:
    monkeypatch.setenv("CHECKOUT_EXPIRY_MINUTES", str(minutes))
    clear_payment_caches()
    started = time.time()
    run(create_payment_link(espresso_order(catalog), CUSTOMER))

    [session] = stripe_env.sessions.values()
    assert started + minutes * 60 - 2 <= session["expires_at"] <= time.time() + minutes * 60


def test_return_urls_come_from_the_environment(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_SUCCESS_URL", "https://shop.example/thanks")
    monkeypatch.setenv("CHECKOUT_CANCEL_URL", "https://shop.example/cancelled")
    clear_payment_caches()
    run(create_payment_link(espresso_order(catalog), CUSTOMER))

    [request] = creates(stripe_env)
    assert request.params["success_url"] == "https://shop.example/thanks"
    assert request.params["cancel_url"] == "https://shop.example/cancelled"


@pytest.mark.parametrize("value", ["10", "2000", "abc"])
def test_invalid_expiry_minutes_is_a_config_error(value: str) -> None:
    environ = {"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)}
    with pytest.raises(ConfigError, match=r"^CHECKOUT_EXPIRY_MINUTES: "):
        StripeSettings.from_env({**environ, "CHECKOUT_EXPIRY_MINUTES": value})


def test_invalid_expiry_minutes_fails_the_payment_link_loudly(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_EXPIRY_MINUTES", "10")
    clear_payment_caches()
    with pytest.raises(ConfigError, match="CHECKOUT_EXPIRY_MINUTES"):
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert stripe_env.requests == []


@pytest.mark.parametrize("prefix", ["pk_test_", "whsec_", "test_"])
def test_a_key_that_is_not_a_secret_key_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"^STRIPE_SECRET_KEY: "):
        StripeSettings.from_env({"STRIPE_SECRET_KEY": prefix + secrets.token_hex(12)})


@pytest.mark.parametrize("prefix", ["sk_test_", "rk_test_"])
def test_secret_and_restricted_keys_are_accepted(prefix: str) -> None:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": prefix + secrets.token_hex(12)})
    assert settings is not None
    assert settings.api_base == stripe.DEFAULT_API_BASE
    assert settings.expiry_minutes == DEFAULT_EXPIRY_MINUTES


def test_without_a_secret_key_payments_are_not_configured(
    no_stripe: None, catalog: Catalog
) -> None:
    with pytest.raises(PaymentsNotConfigured) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert "isn't set up" in caught.value.customer_message


def test_recovery_is_on_and_the_reminder_off_by_default() -> None:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)})
    assert (settings.recovery, settings.recovery_promotion_codes) == (True, False)
    assert settings.reminder_minutes == 0


@pytest.mark.parametrize(("value", "on"), [("false", False), ("off", False), ("1", True)])
def test_recovery_can_be_turned_off(value: str, on: bool) -> None:
    environ = {"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12), "CHECKOUT_RECOVERY": value}
    assert StripeSettings.from_env(environ).recovery is on
