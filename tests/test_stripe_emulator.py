"""The Stripe emulator answers as Stripe does: form decoding, refusals, idempotency keys,
authentication, refunds. Checked through stripe-python's own client, as the bot uses it."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, cast

import aiohttp
import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from actions.payments.checkout_links import checkout_params
from actions.payments.client import stripe_client
from actions.settings import StripeSettings
from sandbox.stripe_api import StripeEmulator, decode_form
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER
from tests.support.stripe_checkout import (
    COFFEE_CLUB_PRICE,
    ESPRESSO_PRICE,
    SESSIONS,
    awaiting_order,
    espresso_order,
    run,
)

# --- what Stripe refuses -----------------------------------------------------------------


def valid_params(catalog: Catalog) -> dict[str, Any]:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)})
    assert settings is not None
    params = checkout_params(espresso_order(catalog), CUSTOMER, catalog, settings)
    return dict(params)


def rate(**changes: Any) -> dict[str, Any]:
    """A shipping option as the bot sends it, with `changes` to its shipping_rate_data."""
    data = {
        "type": "fixed_amount",
        "display_name": "Delivery to Germany",
        "fixed_amount": {"amount": 490, "currency": "eur"},
        "delivery_estimate": {"minimum": {"unit": "business_day", "value": 1}},
        **changes,
    }
    return {"shipping_rate_data": {k: v for k, v in data.items() if v is not None}}


RATE = "shipping_options[0][shipping_rate_data]"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"line_items": [{"price": COFFEE_CLUB_PRICE, "quantity": 1}]}, "line_items[0][price]"),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": COFFEE_CLUB_PRICE, "quantity": 1}],
                "payment_intent_data": None,
                "shipping_options": [rate()],
            },
            "shipping_options",
        ),
        ({"shipping_options": [rate()] * 6}, "shipping_options"),
        ({"shipping_options": [rate(display_name=None)]}, f"{RATE}[display_name]"),
        ({"shipping_options": [rate(fixed_amount=None)]}, f"{RATE}[fixed_amount]"),
        (
            {"shipping_options": [rate(fixed_amount={"amount": -1, "currency": "eur"})]},
            f"{RATE}[fixed_amount][amount]",
        ),
        (
            {"shipping_options": [rate(fixed_amount={"amount": 490, "currency": "usd"})]},
            f"{RATE}[fixed_amount][currency]",
        ),
        (
            {
                "shipping_options": [
                    rate(delivery_estimate={"minimum": {"unit": "fortnight", "value": 1}})
                ]
            },
            f"{RATE}[delivery_estimate][minimum][unit]",
        ),
        ({"shipping_options": [rate(cost=1)]}, f"{RATE}[cost]"),
        (
            {"shipping_address_collection": {"allowed_countries": ["germany"]}},
            "shipping_address_collection[allowed_countries][0]",
        ),
        (
            {"mode": "subscription", "payment_intent_data": None, "subscription_data": {}},
            "line_items",
        ),
        ({"subscription_data": {"metadata": {"order_id": "x"}}}, "subscription_data"),
        ({"line_items": [{"price": ESPRESSO_PRICE, "quantity": 0}]}, "line_items[0][quantity]"),
        ({"line_items": None}, "line_items"),
        ({"success_url": None}, "success_url"),
        ({"mode": "donation"}, "mode"),
        ({"expires_at": int(time.time()) + 10 * 60}, "expires_at"),
        ({"expires_at": int(time.time()) + 25 * 60 * 60}, "expires_at"),
        ({"client_reference": "typo"}, "client_reference"),
    ],
)
def test_the_fake_refuses_what_stripe_refuses(
    stripe_env: StripeEmulator, catalog: Catalog, change: dict[str, Any], param: str
) -> None:
    params = {**valid_params(catalog), **change}

    async def create() -> None:
        await stripe_client().v1.checkout.sessions.create_async(
            params=cast(SessionCreateParams, params)
        )

    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(create())
    assert caught.value.param == param
    assert caught.value.http_status == 400
    assert stripe_env.sessions == {}


# --- the fake itself ---------------------------------------------------------------------


def test_form_bodies_decode_into_nested_params() -> None:
    pairs = [
        ("mode", "payment"),
        ("line_items[0][price]", "price_a"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_b"),
        ("metadata[order_id]", "ORD-1"),
        ("payment_intent_data[metadata][order_id]", "ORD-1"),
        ("payment_method_types[]", "card"),
    ]
    assert decode_form(pairs) == {
        "mode": "payment",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"order_id": "ORD-1"},
        "payment_intent_data": {"metadata": {"order_id": "ORD-1"}},
        "payment_method_types": ["card"],
    }


def test_the_fake_refuses_an_idempotency_key_reused_with_other_params(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    params = valid_params(catalog)
    other = {**params, "line_items": [{"price": ESPRESSO_PRICE, "quantity": 3}]}

    async def create_twice() -> None:
        sessions = stripe_client().v1.checkout.sessions
        options: stripe.RequestOptions = {"idempotency_key": "checkout-reused"}
        await sessions.create_async(params=cast(SessionCreateParams, params), options=options)
        await sessions.create_async(params=cast(SessionCreateParams, other), options=options)

    with pytest.raises(stripe.IdempotencyError):
        run(create_twice())
    assert len(stripe_env.sessions) == 1


def test_the_fake_answers_unknown_and_closed_sessions_like_stripe(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)

    async def retrieve(session_id: str) -> None:
        await stripe_client().v1.checkout.sessions.retrieve_async(session_id)

    async def expire(session_id: str) -> None:
        await stripe_client().v1.checkout.sessions.expire_async(session_id)

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        run(retrieve("cs_test_unknown"))
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")

    stripe_env.expire(session_id)
    with pytest.raises(stripe.InvalidRequestError) as closed:
        run(expire(session_id))
    assert closed.value.http_status == 400
    assert "status of `open`" in str(closed.value.user_message)


def test_the_fake_wants_the_bearer_key(stripe_env: StripeEmulator) -> None:
    async def post_without_key() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{stripe_env.base_url}{SESSIONS}", data={"mode": "payment"}) as answer,
        ):
            return answer.status, await answer.json()

    status, body = asyncio.run(post_without_key())
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert stripe_env.sessions == {}


# --- the emulator's refunds ------------------------------------------------------------------


def test_the_fake_refunds_in_part_then_the_rest_and_no_more(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    pi = stripe_env.sessions[str(order.checkout_session_id)]["payment_intent"]

    async def refund(key: str | None = None, **params: Any) -> Any:
        options: dict[str, Any] = {"idempotency_key": key} if key else {}
        create = stripe_client().v1.refunds.create_async
        return await create(params=cast(Any, params), options=cast(Any, options))

    part = run(refund("r-1", payment_intent=pi, amount=100))
    again = run(refund("r-1", payment_intent=pi, amount=100))
    assert (part.amount, again.id) == (100, part.id)  # the key replays the first answer
    assert run(refund(payment_intent=pi)).amount == 2480  # the rest
    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(refund(payment_intent=pi, amount=1))
    assert caught.value.code == "charge_already_refunded"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(refund(payment_intent="pi_test_unknown"))
    assert caught.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(refund(payment_intent=pi, amount=1, refund_application_fees=True))
    assert caught.value.code == "parameter_unknown"  # not a parameter stripe 16.1.0 knows
    assert [r["amount"] for r in stripe_env.refunded_of(pi)] == [100, 2480]


def test_the_fake_lists_a_payments_refunds_newest_first_in_pages(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    intents = []
    for _ in range(2):
        order = awaiting_order(stripe_env, catalog)
        stripe_env.complete(str(order.checkout_session_id))
        intents.append(stripe_env.sessions[str(order.checkout_session_id)]["payment_intent"])

    async def refund(pi: str, amount: int) -> Any:  # the client is made on run()'s loop
        return await stripe_client().v1.refunds.create_async(
            params={"payment_intent": pi, "amount": amount}
        )

    for pi, amount in ((intents[0], 100), (intents[0], 200), (intents[0], 300), (intents[1], 50)):
        run(refund(pi, amount))

    async def listed(**params: Any) -> tuple[list[int], bool]:
        page = await stripe_client().v1.refunds.list_async(params=cast(Any, params))
        return [r.amount for r in page.data], page.has_more

    assert run(listed(payment_intent=intents[0])) == ([300, 200, 100], False)
    assert run(listed(payment_intent=intents[0], limit=2)) == ([300, 200], True)
    after = stripe_env.refunded_of(intents[0])[-1]["id"]  # the newest
    assert run(listed(payment_intent=intents[0], starting_after=after)) == ([200, 100], False)

    async def every_amount() -> list[int]:
        page = await stripe_client().v1.refunds.list_async(params={"limit": 1})
        return [r.amount async for r in page.auto_paging_iter()]

    assert run(every_amount()) == [50, 300, 200, 100]  # the SDK pages through them all
    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(listed(status="succeeded"))
    assert caught.value.code == "parameter_unknown"
