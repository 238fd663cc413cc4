"""Stripe Checkout from the action server, against the fake Stripe API on loopback.

Everything goes through the real `StripeClient` (aiohttp, retries, idempotency keys), so these
tests see what Stripe would receive and how the client reacts to what Stripe answers.
The client's aiohttp session belongs to the event loop it was first used on: every
`asyncio.run` here gets a fresh client (`run`, `run_stripe_action`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, ClassVar, TypeVar, cast

import aiohttp
import pytest
import stripe
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from stripe.params.checkout import SessionCreateParams

from actions import payments
from actions.flow_actions import ActionFlowStep
from actions.order_actions import ActionCancelOrder
from actions.orders import Order, OrderStatus, with_order
from actions.payment_actions import (
    ActionCheckoutExpired,
    ActionCreatePaymentLink,
    ActionPaymentSucceeded,
)
from actions.payments import (
    ConfigError,
    PaymentError,
    PaymentProcessing,
    PaymentsNotConfigured,
    StripeSettings,
    StripeUnavailable,
    cancel_payment,
    create_payment_link,
)
from sandbox.stripe_api import StripeEmulator, StripeRequest, decode_form, lock_timeout
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, make_tracker, slot_updates
from tests.support.fixtures import fake_stripe  # noqa: F401 - shared fixture

T = TypeVar("T")

SESSIONS = "/v1/checkout/sessions"
ESPRESSO_PRICE = "price_1QShopEspresso250"
COFFEE_CLUB_PRICE = "price_1QShopCoffeeClubMonthly"
CHECKOUT_VARIABLES = ("CHECKOUT_EXPIRY_MINUTES", "CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL")
PAID_ALREADY = "already gone through"


def clear_payment_caches() -> None:
    payments.stripe_settings.cache_clear()
    payments.stripe_client.cache_clear()


class ClosingAIOHTTPClient(stripe.AIOHTTPClient):
    """stripe-python's aiohttp client, remembered so `run` can close it on its own loop."""

    opened: ClassVar[list[stripe.AIOHTTPClient]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened.append(self)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs Stripe calls on a fresh event loop with a client created (and closed) on it.

    The client's aiohttp session belongs to the loop it was first used on, and each
    `asyncio.run` is a new loop: clear the cached client first, close its session last.
    """
    payments.stripe_client.cache_clear()

    async def main() -> T:
        try:
            return await coroutine
        finally:
            while ClosingAIOHTTPClient.opened:
                await ClosingAIOHTTPClient.opened.pop().close_async()  # type: ignore[no-untyped-call]

    return asyncio.run(main())


def run_stripe_action(
    action: Action, tracker: Tracker
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Like tests.conftest.run_action, on a loop that closes the Stripe client before it ends.

    (run_action's own asyncio.run leaves no point at which to close the client's session.)
    """
    dispatcher = CollectingDispatcher()
    events = run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


@pytest.fixture
def stripe_env(
    monkeypatch: pytest.MonkeyPatch,
    fake_stripe: StripeEmulator,  # noqa: F811 - the fixture imported above
) -> Iterator[StripeEmulator]:
    """The action server configured for the fake: its key, its address, default checkout."""
    monkeypatch.setattr(stripe, "AIOHTTPClient", ClosingAIOHTTPClient)
    monkeypatch.setenv("STRIPE_SECRET_KEY", fake_stripe.api_key)
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.base_url)
    for name in CHECKOUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    clear_payment_caches()
    yield fake_stripe
    clear_payment_caches()


def creates(fake: StripeEmulator) -> list[StripeRequest]:
    """The session-creation requests the fake received."""
    return fake.requests_to("POST", SESSIONS)


def espresso_order(catalog: Catalog) -> Order:
    return Order.start(catalog, {"espresso-beans": 2})


def awaiting_order(fake: StripeEmulator, catalog: Catalog) -> Order:
    """An order waiting for payment on a session that exists in the fake."""
    order = espresso_order(catalog)
    link = run(create_payment_link(order, CUSTOMER))
    return order.with_link(link.session_id, link.url)


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
        "success_url": payments.DEFAULT_RETURN_URL,
        "cancel_url": payments.DEFAULT_RETURN_URL,
    }
    assert started + 3600 - 2 <= expires_at <= time.time() + 3600
    assert request.headers["Idempotency-Key"] == payments.idempotency_key(order)
    assert request.headers["Stripe-Version"] == payments.STRIPE_API_VERSION
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
    assert settings.expiry_minutes == payments.DEFAULT_EXPIRY_MINUTES


def test_the_pinned_api_version_is_the_sdks_own() -> None:
    # Bumping stripe-python changes its default version: review the shapes we read, then bump.
    assert stripe.api_version == payments.STRIPE_API_VERSION


def test_checkout_params_are_session_create_params(catalog: Catalog) -> None:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)})
    assert settings is not None
    order = replace(espresso_order(catalog), attempt_at=1_700_000_000)
    params: SessionCreateParams = payments.checkout_params(order, CUSTOMER, catalog, settings)
    assert {"mode", "line_items", "success_url", "expires_at", "client_reference_id"} <= set(params)
    assert params["expires_at"] == 1_700_000_000 + 60 * 60
    assert params["line_items"] == [{"price": ESPRESSO_PRICE, "quantity": 2}]


# --- what Stripe refuses -----------------------------------------------------------------


def test_a_price_stripe_does_not_know_fails_without_leaving_a_session(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    del stripe_env.prices[ESPRESSO_PRICE]
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert caught.value.customer_message == payments.LINK_FAILED
    assert stripe_env.sessions == {}
    assert len(creates(stripe_env)) == 1  # a 400 is not retried


def valid_params(catalog: Catalog) -> dict[str, Any]:
    settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)})
    assert settings is not None
    params = payments.checkout_params(espresso_order(catalog), CUSTOMER, catalog, settings)
    return dict(params)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"line_items": [{"price": COFFEE_CLUB_PRICE, "quantity": 1}]}, "line_items[0][price]"),
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
        await payments.stripe_client().v1.checkout.sessions.create_async(
            params=cast(SessionCreateParams, params)
        )

    with pytest.raises(stripe.InvalidRequestError) as caught:
        run(create())
    assert caught.value.param == param
    assert caught.value.http_status == 400
    assert stripe_env.sessions == {}


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


def test_without_a_secret_key_payments_are_not_configured(
    no_stripe: None, catalog: Catalog
) -> None:
    with pytest.raises(PaymentsNotConfigured) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert "isn't set up" in caught.value.customer_message


# --- retries and timeouts ----------------------------------------------------------------


def test_a_server_error_is_retried_with_the_same_idempotency_key(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    stripe_env.queue_failures(500)
    order = espresso_order(catalog)
    link = run(create_payment_link(order, CUSTOMER))

    assert list(stripe_env.sessions) == [link.session_id]
    keys = [r.idempotency_key for r in creates(stripe_env)]
    assert keys == [payments.idempotency_key(order)] * 2


def test_three_server_errors_fail_with_the_customer_message(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert caught.value.customer_message == payments.LINK_FAILED
    assert len(creates(stripe_env)) == 1 + payments.STRIPE_NETWORK_RETRIES
    assert stripe_env.sessions == {}


def test_a_card_error_is_not_retried(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    stripe_env.queue_failures(402)
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.CardError)
    assert caught.value.customer_message == payments.LINK_FAILED
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
    monkeypatch.setattr(payments, "STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0, 2.0, 2.0)
    started = time.monotonic()
    with pytest.raises(PaymentError) as caught:
        run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert isinstance(caught.value.__cause__, stripe.APIConnectionError)
    assert caught.value.customer_message == payments.LINK_FAILED
    assert len(creates(stripe_env)) == 1 + payments.STRIPE_NETWORK_RETRIES
    assert time.monotonic() - started < 5.0


def test_a_late_answer_is_retried_into_the_session_stripe_created(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payments, "STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0)  # Stripe created the session; the answer came too late
    link = run(create_payment_link(espresso_order(catalog), CUSTOMER))
    assert list(stripe_env.sessions) == [link.session_id]
    assert len(creates(stripe_env)) == 2


# --- idempotency -------------------------------------------------------------------------


def test_the_same_attempt_twice_is_the_same_session_and_the_next_attempt_a_new_one(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = time.time()
    monkeypatch.setattr(payments, "time", SimpleNamespace(time=lambda: frozen))
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
    monkeypatch.setattr(payments, "time", SimpleNamespace(time=lambda: now[0]))
    order = espresso_order(catalog)
    first = run(create_payment_link(order, CUSTOMER))
    now[0] += 1.1
    assert run(create_payment_link(order, CUSTOMER)) == first
    sent, resent = creates(stripe_env)
    assert resent.params == sent.params  # what Stripe compares under one idempotency key


# --- cancelling --------------------------------------------------------------------------


def test_cancel_expires_the_open_session(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    run(cancel_payment(order))
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_cancel_of_an_expired_session_is_fine(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.expire(str(order.checkout_session_id))
    run(cancel_payment(order))
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_cancel_of_a_paid_session_says_the_payment_went_through(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    with pytest.raises(PaymentError) as caught:
        run(cancel_payment(order))
    assert PAID_ALREADY in caught.value.customer_message
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "complete"


def test_cancel_of_a_session_whose_bank_debit_is_clearing_says_it_is_processing(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.act(str(order.checkout_session_id), "pay_by_debit")  # complete, unpaid
    with pytest.raises(PaymentProcessing) as caught:
        run(cancel_payment(order))
    assert f"order {order.id} is still being processed" in caught.value.customer_message
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=order.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert events == [] and len(stripe_env.sessions) == 1  # no new order, no new link
    assert "still being processed" in messages[0]["text"]


def test_after_a_bank_debit_failed_a_new_link_is_made(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    old = str(order.checkout_session_id)
    stripe_env.act(old, "pay_by_debit")
    stripe_env.act(old, "debit_fails")  # stays complete and unpaid at Stripe
    failed = order.moved_to(OrderStatus.PAYMENT_FAILED)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    new = slot_updates(events)["checkout_session_id"]
    assert new not in (None, old) and stripe_env.sessions[new]["status"] == "open"
    assert stripe_env.sessions[new]["url"] in messages[0]["text"]


def test_cancel_without_a_session_does_not_call_stripe(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    run(cancel_payment(espresso_order(catalog)))
    assert stripe_env.requests == []


def test_cancel_when_stripe_fails_is_a_payment_error(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(PaymentError) as caught:
        run(cancel_payment(order))
    assert caught.value.customer_message == payments.CANCEL_FAILED
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "open"


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
        sessions = payments.stripe_client().v1.checkout.sessions
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
        await payments.stripe_client().v1.checkout.sessions.retrieve_async(session_id)

    async def expire(session_id: str) -> None:
        await payments.stripe_client().v1.checkout.sessions.expire_async(session_id)

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
    assert payments.LINK_FAILED in messages[0]["text"]
    assert stripe_env.sessions == {}


def test_try_again_after_a_timed_out_link_gets_the_session_stripe_created(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: expires_at used to be counted from the request's time, so a retry of the
    # same attempt carried other parameters under the same key and Stripe refused it.
    monkeypatch.setattr(payments, "STRIPE_TIMEOUT_SECONDS", 0.3)
    stripe_env.queue_delays(2.0, 2.0, 2.0)
    draft = espresso_order(catalog)
    tracker = make_tracker("affirm", slots=draft.to_slots())
    _, events = run_stripe_action(ActionCreatePaymentLink(), tracker)
    assert slot_updates(events)["order_status"] == "draft"
    [created] = stripe_env.sessions

    messages, events = run_stripe_action(ActionCreatePaymentLink(), tracker)
    assert slot_updates(events)["checkout_session_id"] == created, messages[0]["text"]


def test_cancel_order_action_expires_the_session_and_archives_the_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    messages, events = run_stripe_action(
        ActionCancelOrder(), make_tracker("affirm", slots=order.to_slots())
    )
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"
    slots = slot_updates(events)
    assert slots["orders"][order.id]["order_status"] == "cancelled"
    assert slots["order_id"] is None
    assert f"Order {order.id} is cancelled" in messages[0]["text"]


def test_cancel_order_action_after_payment_keeps_the_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    messages, events = run_stripe_action(
        ActionCancelOrder(), make_tracker("affirm", slots=order.to_slots())
    )
    assert events == []
    assert PAID_ALREADY in messages[0]["text"]


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
    assert keys == [payments.idempotency_key(draft), f"checkout-{draft.id}-2"]


# --- one live link per order, duplicates refunded, new orders stop the old link --------------


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


def paid_event(
    order: Order, session_id: str, slots: dict[str, Any] | None = None, **entities: Any
) -> Tracker:
    """A payment turn naming `session_id`; other entities (forged or the connector's) may
    be added, but the action takes nothing from them."""
    named = {
        "order_id": order.id,
        "checkout_session_id": session_id,
        "stripe_event_id": "evt_test_second",
        **entities,
    }
    return make_tracker(
        "EXTERNAL_payment_succeeded", named, slots=order.to_slots() if slots is None else slots
    )


def paid_twice(fake: StripeEmulator, catalog: Catalog, **items: int) -> tuple[Order, str]:
    """An order paid through its first session whose second session was paid too: the order
    as the conversation holds it, and the second session's id."""
    first = Order.start(catalog, items or {"espresso-beans": 2})
    link = run(create_payment_link(first, CUSTOMER))
    second = first.next_attempt(time.time())
    second_link = run(create_payment_link(second, CUSTOMER))
    fake.complete(link.session_id)
    order = second.with_link(second_link.session_id, second_link.url)
    paid = replace(order, sessions=(link.session_id, second_link.session_id)).paid_by(
        link.session_id, fake.sessions[link.session_id]["payment_intent"]
    )
    fake.complete_late(second_link.session_id)
    return paid, second_link.session_id


def test_a_second_payment_for_a_paid_order_is_refunded_once_and_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    pi = paid.payment_intent
    duplicate = stripe_env.sessions[second_id]["payment_intent"]

    caplog.set_level("INFO", logger="actions.payment_actions")
    for _ in range(2):  # the turn replayed: still one refund (idempotency key per payment)
        # the entity names the first payment: Stripe's answer names the one to refund
        messages, events = run_stripe_action(
            ActionPaymentSucceeded(), paid_event(paid, second_id, payment_intent=pi)
        )
        assert events == []
        assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
        assert "we refunded the second payment of €25.80" in messages[0]["text"]
    (refund,) = stripe_env.refunded_of(duplicate)
    assert refund["amount"] == 2580 and stripe_env.refunded_of(str(pi)) == []
    keys = {r.idempotency_key for r in stripe_env.requests_to("POST", "/v1/refunds")}
    assert keys == {f"refund-duplicate-{duplicate}"}
    logged = [
        r.getMessage() for r in caplog.records if "duplicate payment refunded" in r.getMessage()
    ]
    assert logged[0] == (
        f"duplicate payment refunded: event=evt_test_second order={paid.id} refund={refund['id']}"
    )


def test_the_connectors_duplicate_flag_refunds_whatever_the_tracker_says(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    unpaid = replace(paid, status=OrderStatus.AWAITING_PAYMENT, paid_session=None)
    tracker = paid_event(unpaid, second_id, duplicate_payment=True)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert events == []  # never confirmed
    assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
    duplicate = stripe_env.sessions[second_id]["payment_intent"]
    assert [r["amount"] for r in stripe_env.refunded_of(duplicate)] == [2580]


def test_a_subscription_order_remembers_the_subscription_that_paid_it(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = Order.start(catalog, {"coffee-club": 1})
    link = run(create_payment_link(order, CUSTOMER))
    stripe_env.complete(link.session_id)
    pending = order.with_link(link.session_id, link.url)
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(pending, link.session_id))
    subscription = stripe_env.sessions[link.session_id]["subscription"]
    assert subscription and slot_updates(events)["order_subscription"] == subscription


def test_a_second_subscription_is_cancelled_and_its_refund_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog, **{"coffee-club": 1})
    second_subscription = stripe_env.sessions[second_id]["subscription"]
    for _ in range(2):  # replayed: cancelled once, told again
        messages, events = run_stripe_action(
            ActionPaymentSucceeded(), paid_event(paid, second_id, duplicate_payment=True)
        )
        assert events == []
        assert "cancelled the second subscription" in messages[0]["text"]
    assert stripe_env.cancelled_subscriptions == {second_subscription}
    assert (
        "second subscription cancelled, refund its first payment by hand: "
        f"event=evt_test_second order={paid.id} subscription={second_subscription}"
    ) in caplog.text


def test_a_payment_through_an_older_session_confirms_and_stops_the_current_link(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    failed = first.moved_to(OrderStatus.PAYMENT_FAILED)
    _, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    order = Order.from_slots({**failed.to_slots(), **slot_updates(events)})
    assert order is not None
    old = str(first.checkout_session_id)
    stripe_env.complete_late(old)  # paid on the old page just as it was expired
    pi = stripe_env.sessions[old]["payment_intent"]
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, old))
    assert slot_updates(events)["order_paid_session"] == old
    assert slot_updates(events)["order_payment_intent"] == pi
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_a_second_payment_that_cannot_be_refunded_now_is_told_and_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    duplicate = stripe_env.sessions[second_id]["payment_intent"]

    async def refund_by_hand() -> None:
        await payments.stripe_client().v1.refunds.create_async(params={"payment_intent": duplicate})

    run(refund_by_hand())  # Stripe now refuses another refund of it
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(paid, second_id))
    assert events == []
    assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
    assert "refund the second payment shortly" in messages[0]["text"]
    assert "duplicate payment not refunded, refund it by hand: event=evt_test_second" in caplog.text


# --- payment turns take nothing from their entities ------------------------------------------


def test_a_payment_is_confirmed_from_stripes_answer_not_the_entities(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    forged: dict[str, Any] = {
        "amount_total": 1,
        "currency": "usd",
        "livemode": True,
        "payment_intent": "pi_x",
    }
    messages, events = run_stripe_action(
        ActionPaymentSucceeded(), paid_event(order, session_id, **forged)
    )
    slots = slot_updates(events)
    assert slots["order_status"] == "paid"
    assert slots["order_payment_intent"] == stripe_env.sessions[session_id]["payment_intent"]
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert stripe_env.requests_to("GET", f"{SESSIONS}/{session_id}")


def test_a_payment_is_confirmed_once(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    paid = Order.from_slots({**order.to_slots(), **slot_updates(events)})
    assert paid is not None and paid.status == OrderStatus.PAID
    again = run_stripe_action(ActionPaymentSucceeded(), paid_event(paid, session_id))
    assert again == ([], [])


def test_payment_for_a_replaced_order_confirms_that_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog).moved_to(OrderStatus.CANCELLED)
    stripe_env.complete_late(str(first.checkout_session_id))
    second = Order.start(catalog, {"decaf-beans": 1}).with_link("cs_test_2", "https://pay/2")
    slots = {**second.to_slots(), "orders": with_order(None, first)}
    tracker = paid_event(first, str(first.checkout_session_id), slots)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    (message,) = messages
    assert f"Order {first.id} is confirmed" in message["text"]
    assert "2 × Espresso" in message["text"]
    updated = slot_updates(events)
    assert updated["orders"][first.id]["order_status"] == "paid"
    assert updated["orders"][second.id]["order_status"] == "awaiting_payment"
    assert "order_id" not in updated  # the open second order stays the one discussed


def test_payment_for_a_cancelled_order_is_confirmed(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    cancelled = awaiting_order(stripe_env, catalog).moved_to(OrderStatus.CANCELLED)
    stripe_env.complete_late(str(cancelled.checkout_session_id))
    slots = {"orders": with_order(None, cancelled)}  # cancelled: no current order
    tracker = paid_event(cancelled, str(cancelled.checkout_session_id), slots)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert f"Order {cancelled.id} is confirmed" in messages[0]["text"]
    assert slot_updates(events)["order_id"] == cancelled.id


def other_orders_session(fake: StripeEmulator, catalog: Catalog) -> str:
    other = run(create_payment_link(Order.start(catalog, {"espresso-beans": 2}), CUSTOMER))
    fake.complete(other.session_id)
    return other.session_id


@pytest.mark.parametrize("case", ["unpaid", "another_order", "unknown", "amount", "debit"])
def test_a_payment_stripe_does_not_vouch_for_is_not_confirmed(
    stripe_env: StripeEmulator, catalog: Catalog, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    if case == "another_order":  # paid, same amount, but its metadata names another order
        session_id = other_orders_session(stripe_env, catalog)
    elif case == "unknown":
        session_id = "cs_test_" + secrets.token_hex(24)
    elif case == "amount":  # the conversation's order differs from what Stripe charged
        stripe_env.complete(session_id)
        order = replace(order, lines=(replace(order.lines[0], quantity=3),))
    elif case == "debit":
        stripe_env.act(session_id, "pay_by_debit")
    verified: dict[str, Any] = {"amount_total": order.total, "currency": "eur", "livemode": False}
    tracker = paid_event(order, session_id, payment_intent="pi_test_x", **verified)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert events == []
    assert "checking it" in messages[0]["text"]
    assert f"payment not confirmed: event=evt_test_second order={order.id}" in caplog.text


def test_a_payment_turn_fails_when_stripe_cannot_answer_so_the_event_is_replayed(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(StripeUnavailable):
        run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    assert slot_updates(events)["order_status"] == "paid"  # the replay confirms


def test_a_payment_told_again_for_an_order_paid_before_sessions_were_recorded_is_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    legacy = order.moved_to(OrderStatus.PAID)  # no paid_session: recorded by older code
    caplog.set_level("ERROR", logger="actions.payment_actions")
    tracker = paid_event(legacy, str(order.checkout_session_id))
    assert run_stripe_action(ActionPaymentSucceeded(), tracker) == ([], [])
    assert "paid before its session was recorded, not confirmed again" in caplog.text
    assert "whether it is a second payment to refund: event=" in caplog.text


def flow_completion(token: str) -> dict[str, Any]:
    address = {"name": "A Customer", "street": "Main St 1", "postal_code": "1000", "city": "Town"}
    return {"flow_token": token, "flow_data": {"product": "green-tea", "quantity": "1", **address}}


def test_a_second_flow_stops_the_first_orders_link_and_keeps_it(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert stripe_env.sessions[str(first.checkout_session_id)]["status"] == "expired"
    assert f"Your earlier order {first.id} wasn't paid" in messages[0]["text"]
    slots = slot_updates(events)
    assert slots["orders"][first.id]["order_status"] == "cancelled"
    assert slots["order_id"] != first.id and slots["order_status"] == "awaiting_payment"
    assert slots["orders"][slots["order_id"]]["order_flow_token"] == "tok-2"


def test_a_second_flow_does_not_replace_an_order_paid_meanwhile(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(first.checkout_session_id))
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert events == [] and len(stripe_env.sessions) == 1
    assert f"Your payment for order {first.id} has just gone through" in messages[0]["text"]


def test_a_second_flow_when_stripe_cannot_stop_the_first_link_keeps_the_new_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    stripe_env.queue_failures(500, 500, 500)  # the expire and its two retries
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    slots = {**first.to_slots(), **slot_updates(events)}
    draft = Order.from_slots(slots)
    assert draft is not None and draft.id != first.id
    assert (draft.status, draft.flow_token) == (OrderStatus.DRAFT, "tok-2")
    assert [(line.product_id, line.quantity) for line in draft.lines] == [("green-tea", 1)]
    assert slots["orders"][first.id]["order_status"] == "awaiting_payment"
    assert f"Your order {draft.id} is saved" in messages[-1]["text"]
    assert messages[-1]["buttons"] == [{"title": "Try again", "payload": "/affirm"}]
    assert len(stripe_env.sessions) == 1

    again = make_tracker("flow_completed", flow_completion("tok-2"), slots=slots)
    assert run_stripe_action(ActionFlowStep(), again) == ([], [])  # one order per token

    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=slots)
    )
    updated = {**slots, **slot_updates(events)}
    assert stripe_env.sessions[str(first.checkout_session_id)]["status"] == "expired"
    assert updated["orders"][first.id]["order_status"] == "cancelled"
    assert (updated["order_id"], updated["order_status"]) == (draft.id, "awaiting_payment")
    assert stripe_env.sessions[updated["checkout_session_id"]]["url"] in messages[-1]["text"]


def test_a_flow_completion_run_again_after_a_failed_turn_reuses_its_link(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-retry"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    # The turn failed after the link went out: its events were not kept, the completion
    # runs again on the same tracker, minutes later (another expires_at for the same key).
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert again["order_id"] == first["order_id"]
    assert again["checkout_session_id"] == first["checkout_session_id"]
    assert len(stripe_env.sessions) == 1 and stripe_env.requests_to("GET", SESSIONS)
    assert stripe_env.sessions[first["checkout_session_id"]]["url"] in messages[0]["text"]


def test_an_open_session_of_the_same_order_id_for_another_amount_is_not_reused(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-other-amount"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    stripe_env.sessions[first["checkout_session_id"]]["amount_total"] += 100
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert again["order_id"] == first["order_id"]
    assert again["checkout_session_id"] != first["checkout_session_id"]
    assert again["order_attempt"] == 2


def test_a_flow_completion_run_again_after_its_link_expired_gets_the_next_attempt(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = make_tracker("flow_completed", flow_completion("tok-expired"))
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    first = slot_updates(events)
    stripe_env.expire(first["checkout_session_id"])
    later = time.time() + 180
    monkeypatch.setattr(time, "time", lambda: later)
    _, events = run_stripe_action(ActionFlowStep(), tracker)
    again = slot_updates(events)
    assert (again["order_id"], again["order_attempt"]) == (first["order_id"], 2)
    assert stripe_env.sessions[again["checkout_session_id"]]["status"] == "open"


# --- the emulator's refunds ------------------------------------------------------------------


def test_the_fake_refunds_in_part_then_the_rest_and_no_more(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    pi = stripe_env.sessions[str(order.checkout_session_id)]["payment_intent"]

    async def refund(key: str | None = None, **params: Any) -> Any:
        options: dict[str, Any] = {"idempotency_key": key} if key else {}
        create = payments.stripe_client().v1.refunds.create_async
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
