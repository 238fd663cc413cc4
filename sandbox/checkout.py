"""What happens on the emulated Stripe Checkout page, and the events Stripe sends for it.

Pure functions over a stored Checkout Session: each moves the session as Stripe would and
returns the events Stripe would deliver, in Stripe's order. `child_metadata` is what the
session passed on to the objects it creates: `payment_intent_data.metadata` to the
PaymentIntent (payment mode), `subscription_data.metadata` to the Subscription.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from sandbox.checkout_recovery import on_expiry
from sandbox.stripe_events import event

Session = dict[str, Any]
Events = list[dict[str, Any]]

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINING_CARD = "4000 0000 0000 0002"


class CheckoutError(ValueError):
    """The action is not possible in the session's state (the page says why)."""


def _require_open(session: Session) -> None:
    if session["status"] != "open":
        raise CheckoutError(f"This Checkout Session is {session['status']}.")


def _payment_intent(session: Session, metadata: dict[str, str], status: str) -> dict[str, Any]:
    if not session.get("payment_intent"):
        session["payment_intent"] = "pi_test_" + secrets.token_hex(12)
    intent: dict[str, Any] = {
        "id": session["payment_intent"],
        "object": "payment_intent",
        "amount": session["amount_total"],
        "currency": session["currency"],
        "livemode": False,
        "status": status,
        "metadata": metadata,
    }
    if status == "requires_payment_method":
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }
    return intent


def _invoice(session: Session, metadata: dict[str, str], reason: str) -> dict[str, Any]:
    return {
        "id": "in_test_" + secrets.token_hex(12),
        "object": "invoice",
        "amount_paid": session["amount_total"],
        "currency": session["currency"],
        "billing_reason": reason,
        "customer": session.get("customer"),
        "livemode": False,
        "status": "paid",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": session["subscription"],
                "metadata": metadata,
            },
        },
    }


def pay(session: Session, metadata: dict[str, str], even_if_closed: bool = False) -> Events:
    """The customer paid with the success card. `even_if_closed` takes the payment of a
    session that was expired meanwhile: the customer who submitted the page just before the
    shop expired it (what a test needs to make a second payment for one order)."""
    if not even_if_closed or session["payment_status"] == "paid":
        _require_open(session)
    session["status"] = "complete"
    session["payment_status"] = "paid"
    if session["mode"] == "subscription":
        session["subscription"] = "sub_test_" + secrets.token_hex(12)
        first_invoice = _invoice(session, metadata, "subscription_create")
        session["invoice"] = first_invoice["id"]
        return [
            event("checkout.session.completed", dict(session)),
            event("invoice.paid", first_invoice),
        ]
    intent = _payment_intent(session, metadata, "succeeded")
    return [
        event("payment_intent.succeeded", intent),
        event("checkout.session.completed", dict(session)),
    ]


def pay_by_debit(session: Session, metadata: dict[str, str]) -> Events:
    """The customer paid by bank debit: the session completes unpaid while the debit clears
    (days on Stripe), then `debit_clears` or `debit_fails`."""
    _require_open(session)
    session["status"] = "complete"
    session["payment_status"] = "unpaid"
    if session["mode"] == "payment":
        _payment_intent(session, metadata, "processing")
    else:
        session["subscription"] = "sub_test_" + secrets.token_hex(12)
    return [event("checkout.session.completed", dict(session))]


def _require_clearing(session: Session) -> None:
    clearing = session["status"] == "complete" and session["payment_status"] == "unpaid"
    if not clearing or session.get("debit_failed"):
        raise CheckoutError("No bank debit of this Checkout Session is clearing.")


def debit_clears(session: Session, metadata: dict[str, str]) -> Events:
    """The bank debit succeeded: the session becomes paid."""
    _require_clearing(session)
    session["payment_status"] = "paid"
    return [event("checkout.session.async_payment_succeeded", dict(session))]


def debit_fails(session: Session, metadata: dict[str, str]) -> Events:
    """The bank debit failed: the session stays complete and unpaid, for good."""
    _require_clearing(session)
    session["debit_failed"] = True  # the emulator's own note: a failed debit never clears
    return [event("checkout.session.async_payment_failed", dict(session))]


def decline(session: Session, metadata: dict[str, str]) -> Events:
    """The card was declined: the session stays open for another try. The PaymentIntent of
    a subscription's first invoice does not carry the session's metadata, as on Stripe."""
    _require_open(session)
    carried = metadata if session["mode"] == "payment" else {}
    return [
        event(
            "payment_intent.payment_failed",
            _payment_intent(session, carried, "requires_payment_method"),
        )
    ]


def expire(session: Session) -> Events:
    """The session expired (its time ran out, or it was expired through the API); with
    recovery enabled, it now carries its recovery URL."""
    _require_open(session)
    session["status"] = "expired"
    on_expiry(session, int(time.time()))
    return [event("checkout.session.expired", dict(session))]


def _require_subscription(session: Session) -> None:
    if session["mode"] != "subscription" or not session.get("subscription"):
        raise CheckoutError("Only a paid subscription can be renewed or cancelled.")


def renew(session: Session, metadata: dict[str, str]) -> Events:
    """The subscription's next period was charged. As at Stripe, the new period first
    updates the Subscription (customer.subscription.updated: the item's period and the
    latest invoice in previous_attributes), then its invoice is paid."""
    _require_subscription(session)
    now = int(time.time())
    cycled = _subscription(
        session,
        metadata,
        "active",
        items=_items(session, start=now),
        latest_invoice="in_" + secrets.token_hex(8),
    )
    previous = {
        "items": _items(session, start=now - PERIOD_SECONDS),
        "latest_invoice": "in_" + secrets.token_hex(8),
    }
    return [
        event("customer.subscription.updated", cycled, previous=previous),
        event("invoice.paid", _invoice(session, metadata, "subscription_cycle")),
    ]


def _items(session: Session, quantity: int = 1, start: int | None = None) -> dict[str, Any]:
    """The Subscription's `items`: its one item, `quantity` of it, billed from `start`
    (newer API versions keep the period on the item)."""
    begins = int(time.time()) if start is None else start
    item = {
        "id": "si_" + str(session["subscription"]),
        "object": "subscription_item",
        "price": {"id": "price_" + str(session["id"])[-12:], "object": "price"},
        "quantity": quantity,
        "current_period_start": begins,
        "current_period_end": begins + PERIOD_SECONDS,
    }
    return {"object": "list", "data": [item]}


def _subscription(
    session: Session, metadata: dict[str, str], status: str, **fields: Any
) -> dict[str, Any]:
    """The session's Subscription as an event carries it, with `fields` on top."""
    _require_subscription(session)
    return {
        "id": session["subscription"],
        "object": "subscription",
        "customer": session.get("customer"),
        "status": status,
        **fields,
        "livemode": False,
        "metadata": metadata,
    }


def cancel_subscription(session: Session, metadata: dict[str, str]) -> Events:
    """The subscription was cancelled (by the customer, or the shop in the dashboard)."""
    subscription = _subscription(session, metadata, "canceled")
    return [event("customer.subscription.deleted", subscription)]


def card_changed(session: Session, metadata: dict[str, str]) -> Events:
    """The customer put a new card on the subscription (in the customer portal)."""
    new_card = "pm_test_" + secrets.token_hex(12)
    subscription = _subscription(session, metadata, "active", default_payment_method=new_card)
    previous = {"default_payment_method": "pm_test_" + secrets.token_hex(12)}
    return [event("customer.subscription.updated", subscription, previous=previous)]


def plan_changed(session: Session, metadata: dict[str, str]) -> Events:
    """The customer switched the subscription to two of its item (in the customer portal's
    plan update): customer.subscription.updated with the items before in previous_attributes."""
    start = int(time.time())
    subscription = _subscription(
        session, metadata, "active", items=_items(session, quantity=2, start=start)
    )
    previous = {"items": _items(session, quantity=1, start=start)}
    return [event("customer.subscription.updated", subscription, previous=previous)]


PERIOD_SECONDS = 30 * 24 * 3600  # the sandbox's subscriptions renew every 30 days


def cancelled_at_period_end(
    session: Session, metadata: dict[str, str], flexible: bool = False
) -> Events:
    """The customer cancelled the subscription at the end of the period paid for (the
    customer portal's default): it stays active until then, and Stripe says so with
    customer.subscription.updated, `cancel_at` the end and `cancel_at_period_end` true (in
    the flexible billing mode, false: only `cancel_at` says it), with previous_attributes."""
    _require_subscription(session)
    now = int(time.time())
    started = int(session.get("created") or now)
    ends = started + PERIOD_SECONDS * (1 + max(0, now - started) // PERIOD_SECONDS)
    subscription = _subscription(
        session,
        metadata,
        "active",
        cancel_at_period_end=not flexible,
        cancel_at=ends,
        billing_mode={"type": "flexible" if flexible else "classic"},
        items={"object": "list", "data": [{"current_period_end": ends}]},
    )
    previous: dict[str, Any] = {"cancel_at": None}
    if not flexible:
        previous["cancel_at_period_end"] = False
    return [event("customer.subscription.updated", subscription, previous=previous)]


def charge_id(payment_intent: str) -> str:
    """The id of the one charge of a PaymentIntent paid in one go."""
    return "ch_test_" + payment_intent.rsplit("_", 1)[-1]


def refunded(session: Session, metadata: dict[str, str], refunded_in_all: int) -> Events:
    """The charge of a paid session after refunds adding up to `refunded_in_all`: Stripe's
    charge.refunded, sent for partial refunds too (`refunded` only once all is refunded)."""
    charge = {
        "id": charge_id(session["payment_intent"]),
        "object": "charge",
        "amount": session["amount_total"],
        "amount_refunded": refunded_in_all,
        "refunded": refunded_in_all >= session["amount_total"],
        "currency": session["currency"],
        "livemode": False,
        "paid": True,
        "status": "succeeded",
        "payment_intent": session["payment_intent"],
        "metadata": metadata,
    }
    return [event("charge.refunded", charge)]


#: The actions of the hosted page, by the name its buttons post.
OUTCOMES: dict[str, Callable[[Session, dict[str, str]], Events]] = {
    "pay": pay,
    "pay_by_debit": pay_by_debit,
    "debit_clears": debit_clears,
    "debit_fails": debit_fails,
    "decline": decline,
    "expire": lambda session, _metadata: expire(session),
    "renew": renew,
    "cancel_subscription": cancel_subscription,
}
