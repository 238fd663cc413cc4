"""Stripe's customer portal in the emulator: `POST /v1/billing_portal/sessions` with Stripe's
checks (the customer exists, `return_url` given or configured, `flow_data` well formed and
its subscription the customer's own), and the hosted portal page each session's `url`
opens, on loopback, where the customer cancels the subscription, changes the card or
switches to two of its item.

What the page does comes back as Stripe's events: `customer.subscription.deleted` for a
cancellation, `customer.subscription.updated` for a new card (the subscription's
`default_payment_method` changes) or a new plan (its `items`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from sandbox import checkout, checkout_page, stripe_params
from sandbox.stripe_api.checks import check_known
from sandbox.stripe_api.errors import StripeApiError

if TYPE_CHECKING:
    from sandbox.stripe_api.account import StripeAccount

FLOW_TYPES = ("payment_method_update", "subscription_cancel", "subscription_update")
# The flows that act on one subscription, and the parameter that names it.
SUBSCRIPTION_FLOWS = {
    "subscription_cancel": stripe_params.FLOW_SUBSCRIPTION_CANCEL,
    "subscription_update": stripe_params.FLOW_SUBSCRIPTION_UPDATE,
}
PAGE_NOTES = {
    "cancel_at_period_end": "Your subscription is cancelled: it ends at the end of the period.",
    "cancel_at_period_end_flexible": "Your subscription is cancelled: it ends at the end of "
    "the period.",
    "cancel": "Your subscription is cancelled.",
    "card": "Your card is updated.",
    "plan": "Your plan is updated.",
}
# Each flow's buttons. Cancelling offers both of Stripe's portal modes: at the end of the
# period (its default: customer.subscription.updated with cancel_at_period_end) and now
# (customer.subscription.deleted). The flexible billing mode's end-of-period cancel sets
# only `cancel_at` (cancel_at_period_end stays false).
PAGE_ACTIONS = {
    "subscription_cancel": (
        ("cancel_at_period_end", "Cancel at the end of the period"),
        ("cancel_at_period_end_flexible", "Cancel at the end of the period (flexible billing)"),
        ("cancel", "Cancel now"),
    ),
    "payment_method_update": (("card", "Use card 5555 5555 5555 4444"),),
    "subscription_update": (
        ("plan", "Switch to 2 per delivery"),
        ("card", "Keep this plan, use card 5555 5555 5555 4444"),
    ),
}


def _missing(param: str) -> StripeApiError:
    return StripeApiError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def check_flow(
    flow: Any, customer: str, owner_of: Mapping[str, str | None], cancelled: set[str]
) -> dict[str, Any] | None:
    """The session's `flow` from `flow_data`, after Stripe's checks; None without one.
    `owner_of` gives each subscription's customer."""
    if flow is None:
        return None
    if not isinstance(flow, dict):
        raise StripeApiError(400, "Invalid object", param="flow_data")
    check_known(flow, stripe_params.FLOW_DATA, "flow_data")
    kind = flow.get("type")
    if not kind:
        raise _missing("flow_data[type]")
    if kind not in FLOW_TYPES:
        raise StripeApiError(
            400,
            f"Invalid flow_data[type]: must be one of {', '.join(FLOW_TYPES)}",
            param="flow_data[type]",
        )
    result: dict[str, Any] = {
        "type": kind,
        "after_completion": {"type": "portal_homepage"},
        "subscription_cancel": None,
        "subscription_update": None,
    }
    if kind not in SUBSCRIPTION_FLOWS:
        return result
    details = flow.get(kind)
    param = f"flow_data[{kind}][subscription]"
    if not isinstance(details, dict) or not details.get("subscription"):
        raise _missing(param)
    check_known(details, SUBSCRIPTION_FLOWS[kind], f"flow_data[{kind}]")
    subscription = str(details["subscription"])
    if subscription not in owner_of:
        raise StripeApiError(
            400,
            f"No such subscription: '{subscription}'",
            code="resource_missing",
            param=param,
        )
    if owner_of[subscription] != customer:
        raise StripeApiError(
            400,
            f"The subscription {subscription} does not belong to the customer {customer}.",
            param=param,
        )
    if subscription in cancelled:
        raise StripeApiError(
            400,
            f"The subscription {subscription} is canceled and cannot be updated or canceled.",
            param=param,
        )
    result[kind] = {"subscription": subscription}
    return result


def new_portal_session(
    params: Mapping[str, Any],
    customers: Mapping[str, Any],
    owner_of: Mapping[str, str | None],
    cancelled: set[str],
    default_return_url: str | None,
    url_of: Callable[[str], str],
) -> dict[str, Any]:
    """A portal session for `params`, in Stripe's order of checks; `url_of(id)` is its page."""
    check_known(params, stripe_params.PORTAL_SESSION_CREATE)
    customer = params.get("customer")
    if not customer:
        raise _missing("customer")
    if customer not in customers:
        raise StripeApiError(
            400, f"No such customer: '{customer}'", code="resource_missing", param="customer"
        )
    return_url = params.get("return_url") or default_return_url
    if return_url is None:
        raise StripeApiError(
            400,
            "You must provide a return_url or set a default return URL in your portal "
            "configuration.",
            param="return_url",
        )
    if not checkout_page.is_web_url(return_url):
        raise StripeApiError(400, "Not a valid URL", code="url_invalid", param="return_url")
    flow = check_flow(params.get("flow_data"), str(customer), owner_of, cancelled)
    session_id = "bps_test_" + secrets.token_hex(12)
    return {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": "bpc_test_default",
        "created": int(time.time()),
        "customer": customer,
        "flow": flow,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": url_of(session_id),
    }


def subscription_owners(account: StripeAccount) -> dict[str, str | None]:
    """Each subscription a session started, and the Customer it belongs to."""
    return {
        s["subscription"]: s.get("customer")
        for s in account.sessions.values()
        if s.get("subscription")
    }


def create_portal_session(account: StripeAccount, params: dict[str, Any]) -> dict[str, Any]:
    """A customer portal session, once the request passes Stripe's checks."""
    session = new_portal_session(
        params,
        account.customers,
        subscription_owners(account),
        account.cancelled_subscriptions,
        account.default_portal_return_url,
        lambda portal_id: account.site(f"/portal/{portal_id}"),
    )
    account.portal_sessions[session["id"]] = session
    return dict(session)


def portal_subscription(account: StripeAccount, portal_id: str) -> str | None:
    """The subscription a portal session acts on: its flow's, else the customer's
    latest one still active."""
    flow = account.portal_sessions[portal_id].get("flow") or {}
    named = (flow.get("subscription_cancel") or flow.get("subscription_update") or {}).get(
        "subscription"
    )
    if named:
        return str(named)
    customer = account.portal_sessions[portal_id]["customer"]
    owned = [
        sub
        for sub, owner in subscription_owners(account).items()
        if owner == customer and sub not in account.cancelled_subscriptions
    ]
    return owned[-1] if owned else None


def portal_act(account: StripeAccount, portal_id: str, outcome: str) -> checkout.Events:
    """What a button of the portal page does: cancel the subscription, or put a new card
    on it; the events Stripe then sends."""
    subscription = portal_subscription(account, portal_id)
    if subscription is None:
        raise StripeApiError(400, "This customer has no active subscription.")
    if outcome == "cancel":
        return account.cancel_subscription(subscription)[1]
    if subscription in account.cancelled_subscriptions:
        raise StripeApiError(400, f"The subscription {subscription} is canceled.")
    owner = next(s for s in account.sessions.values() if s.get("subscription") == subscription)
    if outcome in ("cancel_at_period_end", "cancel_at_period_end_flexible"):
        flexible = outcome == "cancel_at_period_end_flexible"
        return checkout.cancelled_at_period_end(
            owner, account.child_metadata(owner["id"]), flexible=flexible
        )
    if outcome == "plan":
        return checkout.plan_changed(owner, account.child_metadata(owner["id"]))
    return checkout.card_changed(owner, account.child_metadata(owner["id"]))


def render(session: dict[str, Any], subscription: str | None, note: str, error: bool) -> str:
    """The portal page of `session`: its flow's one action (or every action on the
    homepage), the note of the last one, and the way back."""
    flow = session.get("flow") or {}
    kinds = [flow["type"]] if flow else list(PAGE_ACTIONS)
    buttons = "".join(
        f'<button type="submit" name="outcome" value="{value}" id="{value}">'
        f"{escape(label)}</button>"
        for value, label in dict(action for k in kinds for action in PAGE_ACTIONS[k]).items()
    )
    notice = (
        f'<div class="note{" error" if error else ""}" id="note">{escape(note)}</div>'
        if note
        else ""
    )
    back = escape(str(session["return_url"]))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer portal (sandbox)</title></head>
<body><p>SANDBOX — Stripe emulator's customer portal</p><main>
<p>Subscription: <strong id="subscription">{escape(subscription or "—")}</strong></p>
{notice}<form method="post">{buttons}</form>
<p><a id="back" href="{back}">Return</a></p></main></body></html>"""
