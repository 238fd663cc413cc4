"""The emulated Stripe account's objects and Stripe's rules for changing them: Checkout
Sessions (created, listed, expired, and moved by the hosted page), refunds of their payments
and cancellations of their subscriptions.

No HTTP here: each operation takes decoded parameters, raises StripeApiError as Stripe
answers, and returns the object Stripe sends back with the events Stripe then delivers.
Not thread-safe: the emulator calls it under its lock.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from sandbox import checkout
from sandbox.checkout_recovery import new_session_id, recoverable, recovered_copy
from sandbox.stripe_api.checks import (
    check_session_create,
    checked_expires_at,
    whole_number,
)
from sandbox.stripe_api.customers import (
    check_session_customer,
    new_customer,
    save_page_address,
)
from sandbox.stripe_api.errors import StripeApiError
from sandbox.stripe_api.recovery import after_expiration
from sandbox.stripe_api.refunds import checked_refund
from sandbox.stripe_api.shipping import check_shipping
from sandbox.stripe_api.tax_and_codes import apply_code, charge_tax, checked_options
from shop_contract.catalog import Catalog

LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100

Outcome = Callable[[checkout.Session, dict[str, str]], checkout.Events]


class StripeAccount:
    """The prices of a catalog, and the sessions, refunds and cancelled subscriptions made
    since. `page_url` gives a session's hosted page (its `url`)."""

    def __init__(
        self,
        catalog: Catalog,
        page_url: Callable[[str], str],
        site: Callable[[str], str] = lambda path: path,
    ) -> None:
        self.prices: dict[str, int] = {p.stripe_price: p.unit_amount for p in catalog}
        self.names: dict[str, str] = {p.stripe_price: p.name for p in catalog}
        self.recurring_prices: set[str] = {p.stripe_price for p in catalog if p.is_subscription}
        self.currency = catalog.currency
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}  # refund id -> the refund, oldest first
        self.cancelled_subscriptions: set[str] = set()
        self.customers: dict[str, dict[str, Any]] = {}  # customer id -> the Customer
        # Kinds of object the API key may not read (a restricted key without, say,
        # `rak_charge_read`): expanding one is refused with Stripe's 403.
        self.unreadable: set[str] = set()
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.default_portal_return_url: str | None = None  # the portal configuration's
        self.site = site  # a path on the emulator -> its URL (receipts, invoices, portal)
        self._child_metadata: dict[str, dict[str, str]] = {}  # session id -> its PI/sub's
        self._customer_updates: dict[str, dict[str, Any]] = {}  # session id -> customer_update
        # What the hosted page lists (Stripe keeps line items apart from the session object).
        self._line_items: dict[str, list[dict[str, Any]]] = {}
        self._page_url = page_url
        # Whether a recovered copy keeps the expired session's metadata. Stripe's docs do not
        # promise it; turned off to see the bot cope with a copy that carries none.
        self.copies_keep_metadata = True

    def session(self, session_id: str) -> dict[str, Any]:
        """The stored session (not a copy); 404 when there is none."""
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeApiError(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        return session

    def act(self, session_id: str, outcome: Outcome) -> checkout.Events:
        """Moves the session as a button of its hosted page does (checkout.OUTCOMES)."""
        session = self.session(session_id)
        if outcome in (checkout.pay, checkout.pay_by_debit) and session["status"] == "open":
            charge_tax(session)  # the page has the customer's address by now
            self._attach_customer(session)
        return outcome(session, self._child_metadata.get(session_id, {}))

    def _attach_customer(self, session: dict[str, Any]) -> None:
        """The Customer a completing session pays as: the one it was created with, else a
        new one in subscription mode or with `customer_creation: always`, as Checkout does."""
        if session.get("customer"):
            update = self._customer_updates.get(session["id"], {})
            if "auto" in (update.get("address"), update.get("shipping")):
                save_page_address(self.customers[session["customer"]], session)
            return
        if session["mode"] == "subscription" or session.get("customer_creation") == "always":
            session["customer"] = new_customer(self.customers, {})["id"]

    def child_metadata(self, session_id: str) -> dict[str, str]:
        """The metadata the session passed on to its PaymentIntent or Subscription."""
        return dict(self._child_metadata.get(session_id, {}))

    def line_items(self, session_id: str) -> list[dict[str, Any]]:
        """The session's line items (a recovered copy has its original's)."""
        session = self.session(session_id)
        return list(
            self._line_items.get(session_id)
            or self._line_items.get(str(session.get("recovered_from")), [])
        )

    def enter_promotion_code(self, session_id: str, code: str) -> dict[str, Any]:
        """The customer typed `code` into the page's promotion code field."""
        session = self.session(session_id)
        apply_code(session, code)
        return dict(session)

    def refunds_of(self, payment_intent: str) -> list[dict[str, Any]]:
        """The refunds made for this PaymentIntent, oldest first."""
        return [r for r in self.refunds.values() if r["payment_intent"] == payment_intent]

    def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """A new open session, once the request passes Stripe's checks."""
        mode, amount_subtotal = check_session_create(params, self.prices, self.recurring_prices)
        shipping_cost = check_shipping(params, mode, self.currency)
        check_session_customer(params, mode, self.customers)
        shipping = shipping_cost["amount_total"] if shipping_cost else 0
        now = int(time.time())
        expires_at = checked_expires_at(params.get("expires_at"), now)
        recovery = after_expiration(params)
        options = checked_options(params)
        session_id = new_session_id()
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "url": self._page_url(session_id),
            "status": "open",
            "payment_status": "unpaid",
            "mode": mode,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "amount_subtotal": amount_subtotal,
            "amount_total": amount_subtotal + shipping,
            "total_details": {"amount_discount": 0, "amount_shipping": shipping, "amount_tax": 0},
            "shipping_cost": shipping_cost,
            "shipping_address_collection": params.get("shipping_address_collection"),
            "currency": self.currency,
            "created": now,
            "expires_at": expires_at,
            "livemode": False,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "payment_intent": None,
            "subscription": None,
            "invoice": None,
            "customer": params.get("customer"),
            "customer_creation": params.get("customer_creation"),
            "after_expiration": recovery,
            "recovered_from": None,
            **options,
        }
        self.sessions[session_id] = session
        self._child_metadata[session_id] = _child_metadata(params, mode)
        if isinstance(params.get("customer_update"), dict):
            self._customer_updates[session_id] = dict(params["customer_update"])
        self._line_items[session_id] = [
            {
                "description": self.names[item["price"]],
                "quantity": int(item["quantity"]),
                "amount_total": self.prices[item["price"]] * int(item["quantity"]),
            }
            for item in params["line_items"]
        ]
        return dict(session)

    def recover(self, session_id: str) -> dict[str, Any] | None:
        """What the expired session's recovery URL opens: its open copy, made now unless
        one is open already; None when the URL does not work (not expired with recovery,
        or its 30 days are over)."""
        original = self.sessions.get(session_id)
        now = int(time.time())
        if original is None or not recoverable(original, now):
            return None
        for held in reversed(self.sessions.values()):
            if held.get("recovered_from") == session_id and held["status"] == "open":
                return held
        copy_id = new_session_id()
        copy = recovered_copy(original, self._page_url(copy_id), copy_id, now)
        child = dict(self._child_metadata.get(session_id, {}))
        if not self.copies_keep_metadata:
            copy["metadata"], child = {}, {}
        self.sessions[copy_id] = copy
        self._child_metadata[copy_id] = child
        return copy

    def list_sessions(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, filtered by `status`, paged by `limit` and `starting_after`; the
        page, and whether more follow."""
        status = params.get("status")
        if status is not None and status not in ("open", "complete", "expired"):
            raise StripeApiError(400, f"Invalid status: {status}", param="status")
        return _page(
            self.sessions,
            lambda s: status is None or s["status"] == status,
            params,
            "checkout.session",
        )

    def list_refunds(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Newest first, filtered by `payment_intent`, paged like sessions."""
        payment_intent = params.get("payment_intent")
        return _page(
            self.refunds,
            lambda r: payment_intent is None or r["payment_intent"] == payment_intent,
            params,
            "refund",
        )

    def expire_session(self, session_id: str) -> tuple[dict[str, Any], checkout.Events]:
        """Expires an open session; Stripe then sends checkout.session.expired, as it does
        when a session times out."""
        session = self.session(session_id)
        try:
            events = checkout.expire(session)
        except checkout.CheckoutError:
            raise StripeApiError(
                400, "Only Checkout Sessions with a status of `open` can be expired."
            ) from None
        return dict(session), events

    def cancel_subscription(self, subscription_id: str) -> tuple[dict[str, Any], checkout.Events]:
        """Cancels a session's subscription at once; Stripe then sends
        customer.subscription.deleted. A cancelled one cannot be cancelled again."""
        session = next(
            (s for s in self.sessions.values() if s.get("subscription") == subscription_id), None
        )
        if session is None:
            raise StripeApiError(
                404,
                f"No such subscription: '{subscription_id}'",
                code="resource_missing",
                param="id",
            )
        if subscription_id in self.cancelled_subscriptions:
            raise StripeApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        self.cancelled_subscriptions.add(subscription_id)
        events = checkout.cancel_subscription(session, self._child_metadata.get(session["id"], {}))
        return dict(events[0]["data"]["object"]), events

    def refund(self, params: dict[str, Any]) -> tuple[dict[str, Any], checkout.Events]:
        """Refunds a paid session's PaymentIntent, all that is left or `amount` of it; Stripe
        then sends charge.refunded with the cumulative sum."""
        session, amount, done = checked_refund(self.sessions, self.refunds, params)
        payment_intent, reason = session["payment_intent"], params.get("reason")
        refund = {
            "id": "re_test_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "charge": checkout.charge_id(str(payment_intent)),
            "currency": session["currency"],
            "payment_intent": payment_intent,
            "reason": reason,
            "metadata": params.get("metadata") or {},
            "status": "succeeded",
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        events = checkout.refunded(
            session, self._child_metadata.get(session["id"], {}), done + amount
        )
        return dict(refund), events


def _page(
    by_id: dict[str, dict[str, Any]],
    wanted: Callable[[dict[str, Any]], bool],
    params: dict[str, Any],
    kind: str,
) -> tuple[list[dict[str, Any]], bool]:
    """A list page as Stripe answers it: the `wanted` objects newest first, after the object
    `starting_after` names, at most `limit` (1 to 100, default 10); copies, and whether
    more follow."""
    limit = whole_number(params.get("limit", str(LIST_LIMIT_DEFAULT)), "limit")
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise StripeApiError(
            400,
            f"Invalid limit: must be between 1 and {LIST_LIMIT_MAX}",
            code="parameter_invalid_integer",
            param="limit",
        )
    newest_first = list(reversed(by_id))
    if "starting_after" in params:
        after = str(params["starting_after"])
        if after not in by_id:
            raise StripeApiError(
                404, f"No such {kind}: '{after}'", code="resource_missing", param="starting_after"
            )
        newest_first = newest_first[newest_first.index(after) + 1 :]
    matching = [dict(by_id[i]) for i in newest_first if wanted(by_id[i])]
    return matching[:limit], len(matching) > limit


def _child_metadata(params: Mapping[str, Any], mode: str) -> dict[str, str]:
    """The metadata the session passes on to its PaymentIntent or Subscription."""
    parent = params.get("subscription_data" if mode == "subscription" else "payment_intent_data")
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}
