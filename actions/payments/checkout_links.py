"""An order attempt's Checkout Session: created once per attempt, reused when it exists.

Requests are built as stripe-python's `SessionCreateParams`, so a wrong field is a type error.
One idempotency key per order attempt, and every parameter follows from the attempt alone, so
a retried or replayed request never makes a second session: an order has one live link.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import stripe
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsShippingOption

from actions.orders.model import Order
from actions.payments.client import stripe_client
from actions.payments.errors import AlreadyPaid, AttemptUsed, PaymentError
from actions.settings import DEFAULT_EXPIRY_MINUTES, StripeSettings, action_settings
from shop_contract.catalog import Catalog, Product, default_catalog
from shop_contract.delivery import Destination
from shop_contract.shop import default_shop
from shop_contract.stripe_metadata import CUSTOMER_KEY, ORDER_ID_KEY

logger = logging.getLogger(__name__)

LINK_FAILED = "Sorry, I couldn't create your payment link just now. Please try again in a moment."


@dataclass(frozen=True)
class CheckoutLink:
    """A created Checkout Session: its id and the hosted payment page."""

    session_id: str
    url: str
    customer_dropped: bool = False  # the remembered Stripe Customer is gone: forget it


def catalog_product(catalog: Catalog, product_id: str) -> Product:
    """The catalog entry of an order line; PaymentError when it left the catalog."""
    product = catalog.get(product_id)
    if product is None:
        raise PaymentError(
            "Sorry, a product in your order is no longer available. Please order again.",
            f"unknown product {product_id}",
        )
    return product


def link_expires_at(order: Order, settings: StripeSettings) -> int:
    """When the Checkout Session of `order`'s current attempt expires (seconds since the
    epoch): counted from when the attempt began, so every request of the attempt, and
    whatever is timed by its link (the reminder before it expires), agrees on it."""
    return int(order.attempt_at) + settings.expiry_minutes * 60


def checkout_params(
    order: Order,
    customer_id: str,
    catalog: Catalog,
    settings: StripeSettings,
    stripe_customer: str | None = None,
) -> SessionCreateParams:
    """The Checkout Session request for `order`'s current attempt; pure.

    Every field follows from the attempt alone — `expires_at` included, counted from when the
    attempt began — so a retried request carries the same parameters under the same
    idempotency key, as Stripe requires.
    """
    priced = [(catalog_product(catalog, line.product_id), line.quantity) for line in order.lines]
    subscription = any(product.is_subscription for product, _ in priced)
    if subscription and len(priced) > 1:
        raise PaymentError(
            "Sorry, a subscription is paid on its own. Please order it separately.",
            "subscription mixed with other lines",
        )  # basket.check_lines refuses such an order before it gets here
    metadata = {CUSTOMER_KEY: customer_id, ORDER_ID_KEY: order.id}
    params: SessionCreateParams = {
        "mode": "subscription" if subscription else "payment",
        "line_items": [
            {"price": product.stripe_price, "quantity": quantity} for product, quantity in priced
        ],
        "client_reference_id": order.id,
        "metadata": metadata,
        "expires_at": link_expires_at(order, settings),
        "success_url": settings.success_url,
        "cancel_url": settings.cancel_url,
    }
    if settings.recovery:
        # An expired session then carries a recovery URL (valid 30 days) that opens a copy
        # of it, metadata included: the follow-up message sends it (actions/followups.py).
        params["after_expiration"] = {
            "recovery": {
                "enabled": True,
                "allow_promotion_codes": settings.recovery_promotion_codes,
            }
        }
    if settings.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    if settings.promotion_codes:
        params["allow_promotion_codes"] = True
    if subscription:
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["payment_intent_data"] = {"metadata": metadata}
    # One Stripe Customer per WhatsApp customer (actions/payments/customers.py): the one they
    # paid as before, else a new one (subscription mode always makes one).
    destination = default_shop().destination(order.destination) if order.destination else None
    ships = destination is not None and not subscription
    if stripe_customer is not None:
        params["customer"] = stripe_customer
        # Stripe Tax finds a returning Customer's location only on the Customer: Stripe
        # refuses the session (customer_tax_location_invalid) when it has none, unless the
        # address typed on the page may be saved onto it.
        params["customer_update"] = (
            {"address": "auto", "shipping": "auto"} if ships else {"address": "auto"}
        )
    elif not subscription:
        params["customer_creation"] = "always"
    if destination is not None and ships:
        params["shipping_address_collection"] = {"allowed_countries": [destination.code]}
        params["shipping_options"] = [shipping_option(order, destination)]
    return params


def shipping_option(order: Order, destination: Destination) -> SessionCreateParamsShippingOption:
    """The order's delivery as Checkout's one shipping option: the amount fixed with the
    order's lines (free from the destination's threshold), and the days data/shop.yml gives.
    Stripe takes shipping options in payment mode only."""
    return {
        "shipping_rate_data": {
            "type": "fixed_amount",
            "display_name": f"Delivery to {destination.name}",
            "fixed_amount": {"amount": order.shipping, "currency": order.currency},
            "delivery_estimate": {
                "minimum": {"unit": "business_day", "value": destination.min_days},
                "maximum": {"unit": "business_day", "value": destination.max_days},
            },
        }
    }


MIN_LINK_LIFETIME_SECONDS = 31 * 60  # Stripe wants expires_at at least 30 min ahead


def usable_attempt(order: Order, now: float | None = None) -> Order:
    """`order`, or its next attempt when this one's link could no longer live long enough."""
    settings = action_settings().stripe
    expiry = (settings.expiry_minutes if settings else DEFAULT_EXPIRY_MINUTES) * 60
    now = time.time() if now is None else now
    if order.attempt_at + expiry - now < MIN_LINK_LIFETIME_SECONDS:
        return order.next_attempt(now)
    return order


def idempotency_key(order: Order) -> str:
    """One key per order attempt: a retried request never creates a second session."""
    return f"checkout-{order.id}-{order.attempt}"


async def create_payment_link(
    order: Order, customer_id: str, stripe_customer: str | None = None
) -> CheckoutLink:
    """Creates the Checkout Session for this order attempt, as `stripe_customer` when the
    customer has paid as one before; PaymentError on any failure."""
    stripe_client()  # PaymentError when no key is set
    settings = action_settings().stripe
    params = checkout_params(
        order, customer_id, default_catalog(), settings_of(settings), stripe_customer
    )
    try:
        return await _create(order, params, idempotency_key(order))
    except stripe.InvalidRequestError as error:
        if stripe_customer is None or not customer_missing(error):
            raise _link_failed(order, error) from error
    # The remembered Customer is gone at Stripe (deleted, or a test-mode one under a live
    # key): pay as a new Customer, under a key of its own (the refused request may be kept
    # under the first), and the caller forgets the old one.
    logger.warning("remembered stripe customer missing, paying as a new one: order=%s", order.id)
    params = checkout_params(order, customer_id, default_catalog(), settings_of(settings))
    try:
        link = await _create(order, params, idempotency_key(order) + "-new-customer")
    except stripe.InvalidRequestError as error:
        raise _link_failed(order, error) from error
    return CheckoutLink(link.session_id, link.url, customer_dropped=True)


def settings_of(settings: StripeSettings | None) -> StripeSettings:
    assert settings is not None  # stripe_client() raises first when there is no key
    return settings


def customer_missing(error: stripe.StripeError) -> bool:
    """Stripe's answer to a `customer` it does not have: `resource_missing` on the param
    `customer` (another refusal of that param, say a malformed id, is not "gone")."""
    return (
        isinstance(error, stripe.InvalidRequestError)
        and getattr(error, "param", None) == "customer"
        and error.code == "resource_missing"
    )


def _link_failed(order: Order, error: stripe.StripeError) -> PaymentError:
    logger.warning(
        "stripe checkout creation failed: order=%s error=%s code=%s status=%s",
        order.id,
        type(error).__name__,
        error.code,
        error.http_status,
    )
    return PaymentError(LINK_FAILED, f"{type(error).__name__}: {error.code}")


async def _create(order: Order, params: SessionCreateParams, key: str) -> CheckoutLink:
    """One session create; InvalidRequestError as raised, PaymentError for other failures."""
    client = stripe_client()
    try:
        session = await client.v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": key}
        )
    except stripe.IdempotencyError as error:
        return await open_session_of(order, error)
    except stripe.InvalidRequestError:
        raise
    except stripe.StripeError as error:
        raise _link_failed(order, error) from error
    if not session.url:
        raise PaymentError(LINK_FAILED, f"session {session.id} has no url")
    return CheckoutLink(session_id=session.id, url=session.url)


SESSIONS_SEARCHED = 100  # one page, newest first: a retried turn is minutes old


async def open_session_of(order: Order, conflict: stripe.IdempotencyError) -> CheckoutLink:
    """The session an earlier run of this order attempt created with other parameters (its
    link began earlier: a Flow completion run again after a failed turn, same order id,
    same key), reused while open so the order keeps one live link. AlreadyPaid when it was
    paid meanwhile; AttemptUsed when it is gone otherwise (expired, or not among the newest
    sessions), and the caller starts the next attempt."""
    client = stripe_client()
    try:
        found = await client.v1.checkout.sessions.list_async(params={"limit": SESSIONS_SEARCHED})
    except stripe.StripeError as error:
        raise PaymentError(LINK_FAILED, f"{type(error).__name__}: {error.code}") from error
    session = next(
        (
            s
            for s in found.data
            if s.client_reference_id == order.id
            and s.amount_subtotal == order.subtotal
            and (s.currency or "").lower() == order.currency
        ),
        None,
    )  # the same order id with other lines or prices is not this order's session (the
    # subtotal, not the total: tax or a code entered on the open page change that)
    if session is not None and session.status == "open" and session.url:
        logger.info("checkout session of an earlier run reused: order=%s", order.id)
        return CheckoutLink(session_id=session.id, url=session.url)
    if session is not None and session.status == "complete":
        raise AlreadyPaid(
            f"Your payment for order {order.id} has already gone through. "
            "You'll get the confirmation in a moment."
        )
    raise AttemptUsed(LINK_FAILED, f"idempotency conflict: {conflict.code}")
