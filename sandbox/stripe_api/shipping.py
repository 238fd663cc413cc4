"""Stripe's checks of a Checkout Session's shipping parameters, and what the session then
reports: `shipping_address_collection.allowed_countries` and `shipping_options` (inline
`shipping_rate_data` of type `fixed_amount`; saved `shr_` rates are not emulated).

Stripe takes shipping options in payment mode only, up to 5; the first is the one selected
when the page opens, so the session's `shipping_cost` and `total_details.amount_shipping`
are that option's amount, included in `amount_total`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from sandbox import stripe_params
from sandbox.stripe_api.checks import check_known, whole_number
from sandbox.stripe_api.errors import StripeApiError

MOST_OPTIONS = 5
ESTIMATE_UNITS = ("business_day", "day", "hour", "month", "week")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def check_shipping(params: Mapping[str, Any], mode: str, currency: str) -> dict[str, Any] | None:
    """Checks the shipping parameters; the selected option as the session's `shipping_cost`
    (None without shipping options)."""
    collection = params.get("shipping_address_collection")
    if collection is not None:
        _check_collection(collection)
    options = params.get("shipping_options")
    if options is None:
        return None
    if mode != "payment":
        raise StripeApiError(
            400,
            "`shipping_options` can only be used in `payment` mode.",
            param="shipping_options",
        )
    if not isinstance(options, list) or not 1 <= len(options) <= MOST_OPTIONS:
        raise StripeApiError(
            400,
            f"You may only specify up to {MOST_OPTIONS} shipping options.",
            param="shipping_options",
        )
    amounts = [
        _check_option(option, f"shipping_options[{i}]", currency)
        for i, option in enumerate(options)
    ]
    return {
        "amount_subtotal": amounts[0],
        "amount_tax": 0,
        "amount_total": amounts[0],
        "shipping_rate": "shr_test_" + secrets.token_hex(12),
    }


def _check_collection(collection: Any) -> None:
    where = "shipping_address_collection"
    if not isinstance(collection, dict):
        raise StripeApiError(400, f"Invalid object: {where}", param=where)
    check_known(collection, stripe_params.SHIPPING_ADDRESS_COLLECTION, where)
    countries = collection.get("allowed_countries")
    if not isinstance(countries, list) or not countries:
        raise StripeApiError(
            400,
            "Missing required param: shipping_address_collection[allowed_countries].",
            code="parameter_missing",
            param=f"{where}[allowed_countries]",
        )
    for index, country in enumerate(countries):
        if not isinstance(country, str) or not _COUNTRY.match(country):
            raise StripeApiError(
                400,
                f"Invalid shipping_address_collection[allowed_countries][{index}]: must be "
                "a two-letter country code",
                code="parameter_invalid_string",
                param=f"{where}[allowed_countries][{index}]",
            )


def _check_option(option: Any, where: str, currency: str) -> int:
    if not isinstance(option, dict):
        raise StripeApiError(400, f"Invalid object: {where}", param=where)
    check_known(option, stripe_params.SHIPPING_OPTION, where)
    data = option.get("shipping_rate_data")
    if not isinstance(data, dict) or "shipping_rate" in option:
        raise StripeApiError(
            400,
            "You must specify exactly one of `shipping_rate` or `shipping_rate_data` "
            "(the emulator knows no saved shipping rates).",
            param=where,
        )
    where = f"{where}[shipping_rate_data]"
    check_known(data, stripe_params.SHIPPING_RATE_DATA, where)
    if not data.get("display_name"):
        raise StripeApiError(
            400,
            f"Missing required param: {where}[display_name].",
            code="parameter_missing",
            param=f"{where}[display_name]",
        )
    if data.get("type", "fixed_amount") != "fixed_amount":
        raise StripeApiError(400, f"Invalid {where}[type]", param=f"{where}[type]")
    fixed = data.get("fixed_amount")
    if not isinstance(fixed, dict):
        raise StripeApiError(
            400,
            f"Missing required param: {where}[fixed_amount].",
            code="parameter_missing",
            param=f"{where}[fixed_amount]",
        )
    check_known(fixed, stripe_params.FIXED_AMOUNT, f"{where}[fixed_amount]")
    amount = whole_number(fixed.get("amount"), f"{where}[fixed_amount][amount]")
    if amount < 0:
        raise StripeApiError(
            400,
            "This value must be greater than or equal to 0.",
            code="parameter_invalid_integer",
            param=f"{where}[fixed_amount][amount]",
        )
    if fixed.get("currency") != currency:
        raise StripeApiError(
            400,
            f"The shipping rate's currency ({fixed.get('currency')}) must match the "
            f"currency of the line items ({currency}).",
            param=f"{where}[fixed_amount][currency]",
        )
    estimate = data.get("delivery_estimate")
    if estimate is not None:
        _check_estimate(estimate, f"{where}[delivery_estimate]")
    return amount


def _check_estimate(estimate: Any, where: str) -> None:
    if not isinstance(estimate, dict):
        raise StripeApiError(400, f"Invalid object: {where}", param=where)
    check_known(estimate, stripe_params.DELIVERY_ESTIMATE, where)
    for bound in ("minimum", "maximum"):
        value = estimate.get(bound)
        if value is None:
            continue
        place = f"{where}[{bound}]"
        if not isinstance(value, dict):
            raise StripeApiError(400, f"Invalid object: {place}", param=place)
        check_known(value, stripe_params.ESTIMATE_BOUND, place)
        if value.get("unit") not in ESTIMATE_UNITS:
            raise StripeApiError(400, f"Invalid {place}[unit]", param=f"{place}[unit]")
        if whole_number(value.get("value"), f"{place}[value]") < 1:
            raise StripeApiError(
                400, f"Invalid {place}[value]: must be at least 1", param=f"{place}[value]"
            )
