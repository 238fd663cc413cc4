"""Stripe's checks of a request's shape: unknown parameters, whole numbers, return URLs,
metadata limits, the expiry window, and a Checkout Session's mode and line items.

Each failed check raises the StripeApiError Stripe answers with (status, message, `param`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sandbox import checkout_page, stripe_params
from sandbox.stripe_api.errors import StripeApiError

EXPIRY_MIN_SECONDS = 30 * 60
EXPIRY_MAX_SECONDS = 24 * 60 * 60
EXPIRY_SLACK_SECONDS = 5
MODES = ("payment", "subscription")


BOOLEANS = {"true": True, "false": False}


def boolean(value: Any, param: str) -> bool:
    """A form-encoded boolean (absent is False), as Stripe reads one."""
    if value is None:
        return False
    if isinstance(value, str) and value in BOOLEANS:
        return BOOLEANS[value]
    raise StripeApiError(400, f"Invalid boolean: {value}", param=param)


def check_known(params: Mapping[str, Any], known: frozenset[str], parent: str = "") -> None:
    """Stripe's answer to a parameter its API does not have."""
    unknown = stripe_params.unknown(dict(params), known)
    if unknown is not None:
        name = f"{parent}[{unknown}]" if parent else unknown
        raise StripeApiError(
            400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
        )


def check_session_create(
    params: Mapping[str, Any], prices: Mapping[str, int], recurring_prices: set[str]
) -> tuple[str, int]:
    """Stripe's checks of a Checkout Session request, in Stripe's order; the session's mode
    and amount_total. `prices` are the account's unit amounts by price id."""
    check_known(params, stripe_params.SESSION_CREATE)
    mode = params.get("mode")
    if mode not in MODES:
        raise StripeApiError(
            400,
            "Invalid mode: must be one of payment, setup, or subscription",
            code="parameter_invalid_empty" if not mode else "parameter_unknown",
            param="mode",
        )
    if not params.get("success_url"):
        raise StripeApiError(
            400,
            "Missing required param: success_url.",
            code="parameter_missing",
            param="success_url",
        )
    for param in ("success_url", "cancel_url"):
        _check_url(params.get(param), param)
    amount_total = _check_line_items(params.get("line_items"), mode, prices, recurring_prices)
    _check_mode_data(params, mode)
    check_metadata(params.get("metadata"), "metadata")
    for parent in ("payment_intent_data", "subscription_data"):
        data = params.get(parent)
        if isinstance(data, dict):
            check_metadata(data.get("metadata"), f"{parent}[metadata]")
    return mode, amount_total


def _check_line_items(
    line_items: Any, mode: str, prices: Mapping[str, int], recurring_prices: set[str]
) -> int:
    """Validates the line items; returns the session's amount_total."""
    if not isinstance(line_items, list) or not line_items:
        raise StripeApiError(
            400,
            f"`line_items` is required in `{mode}` mode.",
            code="parameter_missing",
            param="line_items",
        )
    total = 0
    recurring = 0
    for index, item in enumerate(line_items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise StripeApiError(400, f"Invalid object: {where}", param=where)
        check_known(item, stripe_params.LINE_ITEM, where)
        price = item.get("price")
        if not price:
            raise StripeApiError(
                400,
                "You must specify either `price` or `price_data` for each line item.",
                code="parameter_missing",
                param=f"{where}[price]",
            )
        if price not in prices:
            raise StripeApiError(
                400,
                f"No such price: '{price}'",
                code="resource_missing",
                param=f"{where}[price]",
            )
        quantity = whole_number(item.get("quantity"), f"{where}[quantity]")
        if quantity < 1:
            raise StripeApiError(
                400,
                "Quantity must be greater than or equal to 1.",
                code="parameter_invalid_integer",
                param=f"{where}[quantity]",
            )
        if price in recurring_prices:
            if mode == "payment":
                raise StripeApiError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either "
                    "switch to `subscription` mode or use only one-time prices.",
                    param=f"{where}[price]",
                )
            recurring += 1
        total += quantity * prices[price]
    if mode == "subscription" and not recurring:
        raise StripeApiError(
            400,
            "You must provide at least one recurring price in `subscription` mode when "
            "using prices.",
            param="line_items",
        )
    return total


def _check_url(value: Any, param: str) -> None:
    """Stripe's answer to a return URL that is not a web address (javascript:, a path, …);
    an optional one left out (absent or empty) passes."""
    if value not in (None, "") and not checkout_page.is_web_url(value):
        raise StripeApiError(400, "Not a valid URL", code="url_invalid", param=param)


def _check_mode_data(params: Mapping[str, Any], mode: str) -> None:
    for parent, allowed in (
        ("payment_intent_data", "payment"),
        ("subscription_data", "subscription"),
    ):
        if parent in params and mode != allowed:
            raise StripeApiError(
                400,
                f"You can only specify `{parent}` in `{allowed}` mode.",
                param=parent,
            )


def check_metadata(metadata: Any, param: str) -> None:
    """Stripe's metadata limits: 50 keys, keys ≤ 40 characters, values ≤ 500."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise StripeApiError(400, f"Invalid object: {param}", param=param)
    if len(metadata) > 50:
        raise StripeApiError(400, "Metadata can have at most 50 keys.", param=param)
    for key, value in metadata.items():
        if len(key) > 40 or not isinstance(value, str) or len(value) > 500:
            raise StripeApiError(
                400,
                "Metadata keys must be at most 40 characters and values strings of at most "
                "500 characters.",
                param=f"{param}[{key}]",
            )


def whole_number(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise StripeApiError(
        400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
    )


def checked_expires_at(value: Any, now: int) -> int:
    """Checks `expires_at` against Stripe's window (30 min … 24 h after creation)."""
    if value is None:
        return now + EXPIRY_MAX_SECONDS
    expires_at = whole_number(value, "expires_at")
    if expires_at < now + EXPIRY_MIN_SECONDS - EXPIRY_SLACK_SECONDS:
        raise StripeApiError(
            400,
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
            "creation.",
            param="expires_at",
        )
    if expires_at > now + EXPIRY_MAX_SECONDS + EXPIRY_SLACK_SECONDS:
        raise StripeApiError(
            400,
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    return expires_at
