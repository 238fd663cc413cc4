"""The objects a Checkout Session makes on Stripe (its PaymentIntent and charge, its first
invoice, its subscription) as the API shows them when they are expanded or fetched, built
from the stored session; and the receipt and hosted invoice pages their URLs lead to.

Stripe keeps these as objects of their own; the emulator keeps the session only and derives
them, so they always agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from actions.orders.money import format_amount
from sandbox import checkout
from sandbox.stripe_api.errors import StripeApiError

if TYPE_CHECKING:
    from sandbox.stripe_api.account import StripeAccount

Site = Callable[[str], str]  # a path on the emulator -> its full URL


def missing(kind: str, object_id: str) -> StripeApiError:
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id"
    )


def _session_where(
    sessions: Mapping[str, dict[str, Any]], field: str, value: str, kind: str
) -> dict[str, Any]:
    for session in sessions.values():
        if session.get(field) == value:
            return session
    raise missing(kind, value)


def payment_intent(sessions: Mapping[str, dict[str, Any]], intent_id: str) -> dict[str, Any]:
    session = _session_where(sessions, "payment_intent", intent_id, "payment_intent")
    paid = session["payment_status"] == "paid"
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": session["amount_total"],
        "currency": session["currency"],
        "customer": session.get("customer"),
        "livemode": False,
        "status": "succeeded" if paid else "processing",
        "latest_charge": checkout.charge_id(intent_id) if paid else None,
    }


def charge(
    sessions: Mapping[str, dict[str, Any]], refunded: int, charge_id: str, site: Site
) -> dict[str, Any]:
    """The charge of a paid session's PaymentIntent; `refunded` is what was refunded of it."""
    session = next(
        (
            s
            for s in sessions.values()
            if s.get("payment_intent") and checkout.charge_id(s["payment_intent"]) == charge_id
        ),
        None,
    )
    if session is None or session["payment_status"] != "paid":
        raise missing("charge", charge_id)
    return {
        "id": charge_id,
        "object": "charge",
        "amount": session["amount_total"],
        "amount_refunded": refunded,
        "refunded": refunded >= session["amount_total"],
        "currency": session["currency"],
        "customer": session.get("customer"),
        "livemode": False,
        "paid": True,
        "status": "succeeded",
        "payment_intent": session["payment_intent"],
        "receipt_url": site(f"/receipts/{charge_id}"),
    }


def invoice(sessions: Mapping[str, dict[str, Any]], invoice_id: str, site: Site) -> dict[str, Any]:
    session = _session_where(sessions, "invoice", invoice_id, "invoice")
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_paid": session["amount_total"],
        "currency": session["currency"],
        "customer": session.get("customer"),
        "billing_reason": "subscription_create",
        "livemode": False,
        "status": "paid",
        "hosted_invoice_url": site(f"/invoices/{invoice_id}"),
    }


def subscription(
    sessions: Mapping[str, dict[str, Any]], subscription_id: str, cancelled: bool
) -> dict[str, Any]:
    session = _session_where(sessions, "subscription", subscription_id, "subscription")
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": session.get("customer"),
        "livemode": False,
        "status": "canceled" if cancelled else "active",
    }


def receipt_page(title: str, number: str, amount: int, currency: str) -> str:
    """The page a receipt or hosted invoice URL opens: what was paid, and when it is paid."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><main>"
        f"<h1>{escape(title)}</h1><p id='number'>{escape(number)}</p>"
        f"<p>Amount paid: <strong id='amount'>{escape(format_amount(amount, currency))}"
        "</strong></p><p id='status'>Paid</p></main></body></html>"
    )


def fetch(account: StripeAccount, kind: str, object_id: str) -> dict[str, Any]:
    """The object of `kind` with this id, as the API shows it; 404 when there is none."""
    sessions = account.sessions
    if kind in account.unreadable:
        raise StripeApiError(
            403,
            "The provided key does not have the required permissions for this endpoint. "
            f"Having the 'rak_{kind}_read' permission would allow this request to continue.",
        )
    if kind == "payment_intent":
        return payment_intent(sessions, object_id)
    if kind == "charge":
        intent = "pi_test_" + object_id.rsplit("_", 1)[-1]
        refunded = sum(r["amount"] for r in account.refunds_of(intent))
        return charge(sessions, refunded, object_id, account.site)
    if kind == "invoice":
        return invoice(sessions, object_id, account.site)
    if kind == "subscription":
        cancelled = object_id in account.cancelled_subscriptions
        return subscription(sessions, object_id, cancelled)
    if kind == "customer" and object_id in account.customers:
        return dict(account.customers[object_id])
    raise missing(kind, object_id)


def receipt_html(account: StripeAccount, kind: str, object_id: str) -> str | None:
    """The page of a charge's `receipt_url` (`kind` "receipts") or an invoice's
    `hosted_invoice_url` ("invoices"), as on Stripe open to anyone with the link; None when
    there is no such paid charge or invoice."""
    try:
        found = fetch(account, "charge" if kind == "receipts" else "invoice", object_id)
    except StripeApiError:
        return None
    amount = int(found["amount"] if kind == "receipts" else found["amount_paid"])
    title = "Receipt" if kind == "receipts" else "Invoice"
    return receipt_page(title, object_id, amount, str(found["currency"]))
