"""The action server against the Stripe emulator on loopback: the `stripe_env` fixture, and
helpers the payment tests share (tests/test_checkout_links.py and its neighbours).

Everything goes through the real `StripeClient` (aiohttp, retries, idempotency keys), so the
tests see what Stripe would receive and how the client reacts to what Stripe answers.
The client's aiohttp session belongs to the event loop it was first used on: every
`asyncio.run` here gets a fresh client (`run`, `run_stripe_action`).

`stripe_env` is registered for every test by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, ClassVar, TypeVar

import pytest
import stripe
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.orders.model import Order
from actions.payments.checkout_links import create_payment_link
from actions.payments.client import stripe_client
from actions.settings import action_settings
from sandbox.stripe_api import StripeEmulator, StripeRequest
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, make_tracker
from tests.support.fixtures import fake_stripe  # noqa: F401 - stripe_env uses it

T = TypeVar("T")

SESSIONS = "/v1/checkout/sessions"
ESPRESSO_PRICE = "price_1QShopEspresso250"
COFFEE_CLUB_PRICE = "price_1QShopCoffeeClubMonthly"
CHECKOUT_VARIABLES = (
    "CHECKOUT_EXPIRY_MINUTES",
    "CHECKOUT_SUCCESS_URL",
    "CHECKOUT_CANCEL_URL",
    "CHECKOUT_RECOVERY",
    "CHECKOUT_RECOVERY_PROMOTION_CODES",
    "CHECKOUT_REMINDER_MINUTES",
    "STRIPE_AUTOMATIC_TAX",
    "STRIPE_PROMOTION_CODES",
)
PAID_ALREADY = "already gone through"


def clear_payment_caches() -> None:
    action_settings.cache_clear()
    stripe_client.cache_clear()


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
    stripe_client.cache_clear()

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


def flow_completion(token: str) -> dict[str, Any]:
    address = {"name": "A Customer", "street": "Main St 1", "postal_code": "1000", "city": "Town"}
    cart = {"cart": "green-tea:1", "then": "checkout", **address, "country": "DE"}
    return {"flow_token": token, "flow_data": cart}
