"""Abandoned-checkout recovery at Stripe: the sessions the bot creates ask for it (or not, as
the settings say), and the emulator gives an expired one a recovery URL that opens a copy,
as Stripe does. Through the real StripeClient against the emulator on loopback."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests
import stripe

from actions.payments.checkout_links import create_payment_link
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER
from tests.support.stripe_checkout import (
    clear_payment_caches,
    creates,
    espresso_order,
    run,
)


def created_session(stripe_env: StripeEmulator, catalog: Catalog) -> dict[str, Any]:
    link = run(create_payment_link(espresso_order(catalog), CUSTOMER))
    return stripe_env.sessions[link.session_id]


def test_sessions_ask_for_recovery_by_default_without_promotion_codes(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    session = created_session(stripe_env, catalog)
    [request] = creates(stripe_env)
    recovery = {"enabled": "true", "allow_promotion_codes": "false"}
    assert request.params["after_expiration"] == {"recovery": recovery}
    assert session["after_expiration"]["recovery"] == {
        "enabled": True,
        "allow_promotion_codes": False,
        "expires_at": None,
        "url": None,  # only once it expires
    }


def test_promotion_codes_on_recovered_sessions_when_set(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_RECOVERY_PROMOTION_CODES", "true")
    clear_payment_caches()
    session = created_session(stripe_env, catalog)
    assert session["after_expiration"]["recovery"]["allow_promotion_codes"] is True


def test_no_recovery_when_turned_off(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_RECOVERY", "false")
    clear_payment_caches()
    session = created_session(stripe_env, catalog)
    assert "after_expiration" not in creates(stripe_env)[0].params
    stripe_env.expire(session["id"])
    assert session["after_expiration"] is None
    opened = requests.get(session["url"].replace("/pay/", "/recover/"), timeout=5)
    assert opened.status_code == 404


def test_an_expired_session_carries_a_recovery_url_that_opens_one_copy(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    session = created_session(stripe_env, catalog)
    stripe_env.expire(session["id"])
    recovery = session["after_expiration"]["recovery"]
    assert recovery["url"] and recovery["expires_at"] > session["expires_at"] + 29 * 86400

    opened = requests.get(recovery["url"], timeout=5, allow_redirects=False)
    assert opened.status_code == 303
    (copy,) = [s for s in stripe_env.sessions.values() if s["url"] == opened.headers["Location"]]
    assert copy["status"] == "open" and copy["recovered_from"] == session["id"]
    for same in ("metadata", "client_reference_id", "amount_total", "mode", "shipping_cost"):
        assert copy[same] == session[same], same
    assert copy["after_expiration"] is None  # a copy that expires is not recovered again
    again = requests.get(recovery["url"], timeout=5, allow_redirects=False)
    assert again.headers["Location"] == copy["url"]  # the open copy, not a third session
    assert len(stripe_env.sessions) == 2

    page = requests.get(recovery["url"], timeout=5)  # a browser follows to the hosted page
    assert page.status_code == 200 and 'id="status">open</strong>' in page.text
    stripe_env.complete(copy["id"])
    assert copy["payment_status"] == "paid"
    third = requests.get(recovery["url"], timeout=5, allow_redirects=False)
    assert third.status_code == 303 and third.headers["Location"] != copy["url"]


def test_the_recovery_url_of_an_open_session_does_not_work(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    session = created_session(stripe_env, catalog)
    opened = requests.get(session["url"].replace("/pay/", "/recover/"), timeout=5)
    assert opened.status_code == 404 and len(stripe_env.sessions) == 1


def test_the_recovery_url_is_in_the_expired_event(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    session = created_session(stripe_env, catalog)
    events = stripe_env.account.expire_session(session["id"])[1]
    (expired,) = events
    assert expired["type"] == "checkout.session.expired"
    assert expired["data"]["object"]["after_expiration"]["recovery"]["url"].endswith(
        "/recover/" + session["id"]
    )


@pytest.mark.parametrize(
    ("after_expiration", "param"),
    [
        ({"recovery": {"enabled": True, "colour": "red"}}, "after_expiration[recovery][colour]"),
        ({"recovery": {"allow_promotion_codes": True}}, "after_expiration[recovery][enabled]"),
        ({"recovery": {"enabled": "maybe"}}, "after_expiration[recovery][enabled]"),
        ({"recover": {"enabled": True}}, "after_expiration[recover]"),
    ],
)
def test_the_emulator_refuses_a_malformed_after_expiration(
    stripe_env: StripeEmulator, after_expiration: dict[str, Any], param: str
) -> None:
    client = stripe.StripeClient(stripe_env.api_key, base_addresses={"api": stripe_env.base_url})
    params: Any = {
        "mode": "payment",
        "line_items": [{"price": "price_1QShopEspresso250", "quantity": 1}],
        "success_url": "https://shop.example/ok",
        "after_expiration": after_expiration,
        "metadata": {"n": secrets.token_hex(4)},
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=params)
    assert refused.value.param == param
