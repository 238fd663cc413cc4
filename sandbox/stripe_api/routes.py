"""Which account operation answers a request: the Stripe API paths this shop uses, each
checked against the parameters stripe-python declares for it (sandbox/stripe_params.py)."""

from __future__ import annotations

import re
from typing import Any

from sandbox import checkout, stripe_params
from sandbox.stripe_api import portal, related
from sandbox.stripe_api.account import StripeAccount
from sandbox.stripe_api.checks import check_known
from sandbox.stripe_api.customers import customer_of, new_customer
from sandbox.stripe_api.errors import StripeApiError
from sandbox.stripe_api.expand import expand_paths, expanded
from sandbox.stripe_api.wire import StripeRequest

SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH = re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)")
_EXPIRE_PATH = re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)/expire")
REFUNDS_PATH = "/v1/refunds"
_SUBSCRIPTION_PATH = re.compile(r"/v1/subscriptions/(?P<id>[^/]+)")
PORTAL_SESSIONS_PATH = "/v1/billing_portal/sessions"
CUSTOMERS_PATH = "/v1/customers"
_CUSTOMER_PATH = re.compile(r"/v1/customers/(?P<id>[^/]+)")


def route(account: StripeAccount, request: StripeRequest) -> tuple[dict[str, Any], checkout.Events]:
    """Stripe's answer to an authenticated request, and the events it then delivers."""
    if request.method == "POST" and request.path == SESSIONS_PATH:
        return account.create_session(request.params), []
    if request.method == "GET" and request.path == SESSIONS_PATH:
        check_known(request.params, stripe_params.SESSION_LIST)
        page, has_more = account.list_sessions(request.params)
        return {"object": "list", "url": SESSIONS_PATH, "has_more": has_more, "data": page}, []
    if request.method == "GET" and request.path == REFUNDS_PATH:
        check_known(request.params, stripe_params.REFUND_LIST)
        page, has_more = account.list_refunds(request.params)
        return {"object": "list", "url": REFUNDS_PATH, "has_more": has_more, "data": page}, []
    if request.method == "POST" and request.path == REFUNDS_PATH:
        check_known(request.params, stripe_params.REFUND_CREATE)
        return account.refund(request.params)
    expire = _EXPIRE_PATH.fullmatch(request.path)
    if request.method == "POST" and expire:
        check_known(request.params, stripe_params.SESSION_EXPIRE)
        return account.expire_session(expire["id"])
    subscription = _SUBSCRIPTION_PATH.fullmatch(request.path)
    if request.method == "DELETE" and subscription:
        check_known(request.params, stripe_params.SUBSCRIPTION_CANCEL)
        return account.cancel_subscription(subscription["id"])
    retrieve = _SESSION_PATH.fullmatch(request.path)
    if request.method == "GET" and retrieve:
        check_known(request.params, stripe_params.SESSION_RETRIEVE)
        return _expanded(account, account.session(retrieve["id"]), request), []
    if request.method == "POST" and request.path == PORTAL_SESSIONS_PATH:
        return _expanded(
            account, portal.create_portal_session(account, request.params), request
        ), []
    if request.method == "POST" and request.path == CUSTOMERS_PATH:
        created = new_customer(account.customers, request.params)
        return _expanded(account, created, request), []
    customer = _CUSTOMER_PATH.fullmatch(request.path)
    if request.method == "GET" and customer:
        check_known(request.params, stripe_params.CUSTOMER_RETRIEVE)
        return _expanded(account, customer_of(account.customers, customer["id"]), request), []
    raise StripeApiError(404, f"Unrecognized request URL ({request.method}: {request.path}).")


def _expanded(
    account: StripeAccount, obj: dict[str, Any], request: StripeRequest
) -> dict[str, Any]:
    """`obj` as answered: a copy, with the request's `expand[]` paths expanded."""
    return expanded(
        obj, expand_paths(request.params), lambda kind, i: related.fetch(account, kind, i)
    )
