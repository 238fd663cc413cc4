"""Stripe Checkout for orders: create a payment link, cancel it, refund a duplicate payment.

One `StripeClient` per action-server process, with a pinned API version, explicit retries
and timeouts, and an async HTTP client so a slow Stripe call never blocks other customers.
Requests are built as stripe-python's `SessionCreateParams`, so a wrong field is a type error.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import stripe
from stripe.params.checkout import SessionCreateParams

from actions.orders.model import Order
from actions.orders.states import OrderStatus
from shop_contract.catalog import Catalog, Product, default_catalog
from shop_contract.stripe_metadata import CUSTOMER_KEY, ORDER_ID_KEY

logger = logging.getLogger(__name__)

# Pinned: the shapes our code reads are those of this version. tests/test_payments.py fails
# when a stripe-python upgrade changes its default, so the bump is a conscious one.
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_NETWORK_RETRIES = 2
STRIPE_TIMEOUT_SECONDS = 20.0
DEFAULT_EXPIRY_MINUTES = 60
EXPIRY_RANGE_MINUTES = (30, 24 * 60)  # what Stripe accepts for expires_at
DEFAULT_RETURN_URL = "https://wa.me/"
LINK_FAILED = "Sorry, I couldn't create your payment link just now. Please try again in a moment."
CANCEL_FAILED = "Sorry, I couldn't cancel your order just now. Please try again."
PAID_STATUSES = ("paid", "no_payment_required")
REFUND_FAILED = "We'll refund the second payment shortly; the shop has been told."


class ConfigError(ValueError):
    """A payment setting is malformed; the message names the variable."""


class PaymentError(Exception):
    """A payment operation failed; `customer_message` is safe to show the customer."""

    def __init__(self, customer_message: str, detail: str = "") -> None:
        super().__init__(detail or customer_message)
        self.customer_message = customer_message


class AlreadyPaid(PaymentError):
    """The Checkout Session to stop was paid in the meantime."""


class PaymentProcessing(PaymentError):
    """The Checkout Session to stop was completed with a payment that has not cleared yet
    (a bank debit): no new link until it succeeds or fails."""


class StripeUnavailable(Exception):
    """Stripe could not be asked now. Not a PaymentError: a payment turn lets it fail the
    action, so the connector leaves the Stripe event unfinished and replays it later."""


class PaymentsNotConfigured(PaymentError):
    """No STRIPE_SECRET_KEY: the shop cannot take payments yet."""


@dataclass(frozen=True)
class StripeSettings:
    """The action server's Stripe configuration, read from the environment."""

    secret_key: str
    api_base: str
    success_url: str
    cancel_url: str
    expiry_minutes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StripeSettings | None:
        """None without STRIPE_SECRET_KEY; ConfigError naming the variable when malformed."""
        secret_key = environ.get("STRIPE_SECRET_KEY", "").strip()
        if not secret_key:
            return None
        if not secret_key.startswith(("sk_", "rk_")):
            raise ConfigError("STRIPE_SECRET_KEY: expected a secret key starting sk_ or rk_")
        raw_expiry = environ.get("CHECKOUT_EXPIRY_MINUTES", "").strip()
        try:
            expiry = int(raw_expiry) if raw_expiry else DEFAULT_EXPIRY_MINUTES
        except ValueError:
            raise ConfigError("CHECKOUT_EXPIRY_MINUTES: expected whole minutes") from None
        low, high = EXPIRY_RANGE_MINUTES
        if not low <= expiry <= high:
            raise ConfigError(f"CHECKOUT_EXPIRY_MINUTES: must be between {low} and {high}")
        return cls(
            secret_key=secret_key,
            api_base=environ.get("STRIPE_API_BASE", "").strip() or stripe.DEFAULT_API_BASE,
            success_url=environ.get("CHECKOUT_SUCCESS_URL", "").strip() or DEFAULT_RETURN_URL,
            cancel_url=environ.get("CHECKOUT_CANCEL_URL", "").strip() or DEFAULT_RETURN_URL,
            expiry_minutes=expiry,
        )


@dataclass(frozen=True)
class CheckoutLink:
    """A created Checkout Session: its id and the hosted payment page."""

    session_id: str
    url: str


@lru_cache(maxsize=1)
def stripe_settings() -> StripeSettings | None:
    return StripeSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def stripe_client() -> stripe.StripeClient:
    """The process's one client. Raises PaymentsNotConfigured without a secret key."""
    settings = stripe_settings()
    if settings is None:
        raise PaymentsNotConfigured(
            "Online payment isn't set up for this shop yet, so I can't send a payment link. "
            "Your order is saved.",
            "STRIPE_SECRET_KEY is not set",
        )
    return stripe.StripeClient(
        settings.secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": settings.api_base},
        max_network_retries=STRIPE_NETWORK_RETRIES,
        http_client=stripe.AIOHTTPClient(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def catalog_product(catalog: Catalog, product_id: str) -> Product:
    """The catalog entry of an order line; PaymentError when it left the catalog."""
    product = catalog.get(product_id)
    if product is None:
        raise PaymentError(
            "Sorry, a product in your order is no longer available. Please order again.",
            f"unknown product {product_id}",
        )
    return product


def checkout_params(
    order: Order, customer_id: str, catalog: Catalog, settings: StripeSettings
) -> SessionCreateParams:
    """The Checkout Session request for `order`'s current attempt; pure.

    Every field follows from the attempt alone — `expires_at` included, counted from when the
    attempt began — so a retried request carries the same parameters under the same
    idempotency key, as Stripe requires.
    """
    priced = [(catalog_product(catalog, line.product_id), line.quantity) for line in order.lines]
    subscription = any(product.is_subscription for product, _ in priced)
    metadata = {CUSTOMER_KEY: customer_id, ORDER_ID_KEY: order.id}
    params: SessionCreateParams = {
        "mode": "subscription" if subscription else "payment",
        "line_items": [
            {"price": product.stripe_price, "quantity": quantity} for product, quantity in priced
        ],
        "client_reference_id": order.id,
        "metadata": metadata,
        "expires_at": int(order.attempt_at) + settings.expiry_minutes * 60,
        "success_url": settings.success_url,
        "cancel_url": settings.cancel_url,
    }
    if subscription:
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["payment_intent_data"] = {"metadata": metadata}
    return params


MIN_LINK_LIFETIME_SECONDS = 31 * 60  # Stripe wants expires_at at least 30 min ahead


def usable_attempt(order: Order, now: float | None = None) -> Order:
    """`order`, or its next attempt when this one's link could no longer live long enough."""
    settings = stripe_settings()
    expiry = (settings.expiry_minutes if settings else DEFAULT_EXPIRY_MINUTES) * 60
    now = time.time() if now is None else now
    if order.attempt_at + expiry - now < MIN_LINK_LIFETIME_SECONDS:
        return order.next_attempt(now)
    return order


def idempotency_key(order: Order) -> str:
    """One key per order attempt: a retried request never creates a second session."""
    return f"checkout-{order.id}-{order.attempt}"


async def create_payment_link(order: Order, customer_id: str) -> CheckoutLink:
    """Creates the Checkout Session for this order attempt; PaymentError on any failure."""
    client = stripe_client()
    settings = stripe_settings()
    assert settings is not None  # stripe_client() raised otherwise
    params = checkout_params(order, customer_id, default_catalog(), settings)
    try:
        session = await client.v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": idempotency_key(order)}
        )
    except stripe.IdempotencyError as error:
        return await open_session_of(order, error)
    except stripe.StripeError as error:
        logger.warning(
            "stripe checkout creation failed: order=%s error=%s code=%s status=%s",
            order.id,
            type(error).__name__,
            error.code,
            error.http_status,
        )
        raise PaymentError(LINK_FAILED, f"{type(error).__name__}: {error.code}") from error
    if not session.url:
        raise PaymentError(LINK_FAILED, f"session {session.id} has no url")
    return CheckoutLink(session_id=session.id, url=session.url)


class AttemptUsed(PaymentError):
    """This order attempt's idempotency key made a session that is no longer open: the
    caller starts the next attempt."""


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
            and s.amount_total == order.total
            and (s.currency or "").lower() == order.currency
        ),
        None,
    )  # the same order id with other lines or prices is not this order's session
    if session is not None and session.status == "open" and session.url:
        logger.info("checkout session of an earlier run reused: order=%s", order.id)
        return CheckoutLink(session_id=session.id, url=session.url)
    if session is not None and session.status == "complete":
        raise AlreadyPaid(
            f"Your payment for order {order.id} has already gone through. "
            "You'll get the confirmation in a moment."
        )
    raise AttemptUsed(LINK_FAILED, f"idempotency conflict: {conflict.code}")


async def cancel_payment(order: Order) -> None:
    """Expires the order's open Checkout Session so its link stops working.

    An already expired session counts as cancelled; a completed one raises AlreadyPaid when
    the customer has paid in the meantime, PaymentProcessing while that payment is clearing,
    and counts as stopped once that payment has failed.
    """
    if not order.checkout_session_id:
        return
    client = stripe_client()
    try:
        await client.v1.checkout.sessions.expire_async(order.checkout_session_id)
        return
    except stripe.InvalidRequestError:
        pass  # not open any more: find out whether it expired or was paid
    except stripe.StripeError as error:
        logger.warning("stripe expire failed: order=%s error=%s", order.id, type(error).__name__)
        raise PaymentError(CANCEL_FAILED) from error
    try:
        session = await client.v1.checkout.sessions.retrieve_async(order.checkout_session_id)
    except stripe.StripeError as error:
        logger.warning("stripe retrieve failed: order=%s error=%s", order.id, type(error).__name__)
        raise PaymentError(CANCEL_FAILED) from error
    if session.status != "complete":
        return
    if session.payment_status in PAID_STATUSES:
        raise AlreadyPaid(
            "Your payment for this order has already gone through, so I can't cancel it here. "
            "You'll get the confirmation in a moment."
        )
    if order.status != OrderStatus.PAYMENT_FAILED:
        # Complete but unpaid: a bank debit still clearing. Its failure stays complete and
        # unpaid at Stripe; the order records it (payment_failed), and then a new link may go.
        raise PaymentProcessing(
            f"Your payment for order {order.id} is still being processed. "
            "I'll confirm as soon as it clears."
        )


def refund_key(payment_intent: str) -> str:
    """One key per duplicate payment: a retried or replayed refund is never a second one."""
    return f"refund-duplicate-{payment_intent}"


async def refund_duplicate(order: Order, payment_intent: str) -> str:
    """Refunds in full a second payment taken for an already paid order; the refund's id.

    PaymentError when Stripe refuses or cannot be reached (the caller logs it for a person).
    """
    client = stripe_client()
    try:
        refund = await client.v1.refunds.create_async(
            params={
                "payment_intent": payment_intent,
                "reason": "duplicate",
                "metadata": {ORDER_ID_KEY: order.id},
            },
            options={"idempotency_key": refund_key(payment_intent)},
        )
    except stripe.StripeError as error:
        logger.warning(
            "stripe refund failed: order=%s error=%s code=%s",
            order.id,
            type(error).__name__,
            error.code,
        )
        raise PaymentError(REFUND_FAILED, f"{type(error).__name__}: {error.code}") from error
    return refund.id


@dataclass(frozen=True)
class CheckoutPayment:
    """What Stripe itself says about a Checkout Session: the only source a payment turn
    trusts (its entities only name the session)."""

    session_id: str
    status: str | None
    payment_status: str | None
    amount_total: int | None
    currency: str | None
    livemode: bool
    order_id: str | None
    payment_intent: str | None
    subscription: str | None

    @property
    def is_paid(self) -> bool:
        return self.status == "complete" and self.payment_status in PAID_STATUSES


def _id_of(value: object) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return found if isinstance(found, str) else None


async def retrieve_checkout(session_id: str) -> CheckoutPayment:
    """Asks Stripe for the Checkout Session `session_id`.

    PaymentError when Stripe says there is no such session (or no key is set: nothing to
    check against); StripeUnavailable when Stripe cannot answer now (network, 5xx, 429,
    authentication), so the caller's turn fails and is replayed.
    """
    client = stripe_client()
    try:
        session = await client.v1.checkout.sessions.retrieve_async(session_id)
    except stripe.InvalidRequestError as error:
        raise PaymentError(
            "We received a payment and are checking it.", f"retrieve refused: {error.code}"
        ) from error
    except stripe.StripeError as error:
        logger.warning("stripe retrieve failed: error=%s", type(error).__name__)
        raise StripeUnavailable(f"retrieve {session_id}: {type(error).__name__}") from error
    metadata = session.to_dict().get("metadata") or {}
    order_id = metadata.get(ORDER_ID_KEY)
    return CheckoutPayment(
        session_id=session.id,
        status=session.status,
        payment_status=session.payment_status,
        amount_total=session.amount_total,
        currency=session.currency,
        livemode=bool(session.livemode),
        order_id=order_id if isinstance(order_id, str) else None,
        payment_intent=_id_of(session.payment_intent),
        subscription=_id_of(session.subscription),
    )


async def cancel_duplicate_subscription(order: Order, subscription_id: str) -> None:
    """Cancels, at once, a second subscription started for an already paid order, so it
    never bills again. PaymentError when Stripe cannot be reached.

    The id comes from Stripe's own session, so Stripe refusing it means it is cancelled
    already (a replayed turn): that counts as done.
    """
    client = stripe_client()
    try:
        await client.v1.subscriptions.cancel_async(subscription_id)
    except stripe.InvalidRequestError as error:
        logger.info("subscription already cancelled: order=%s code=%s", order.id, error.code)
    except stripe.StripeError as error:
        logger.warning(
            "stripe subscription cancel failed: order=%s error=%s code=%s",
            order.id,
            type(error).__name__,
            error.code,
        )
        raise PaymentError(REFUND_FAILED, f"{type(error).__name__}: {error.code}") from error
