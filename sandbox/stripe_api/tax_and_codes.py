"""Stripe Tax and promotion codes, as the emulated Checkout page applies them.

A session created with `automatic_tax[enabled]` is charged SANDBOX_TAX_PERCENT of what is
taxed (the line items after any discount, and delivery) when the customer pays, once Stripe
knows their address; with `allow_promotion_codes`, the customer may enter one of
PROMOTION_CODES on the page, which takes its percentage off the line items. The session's
`total_details` and `amount_total` then say what was charged, as Stripe's do.
"""

from __future__ import annotations

from typing import Any

from sandbox.stripe_api.checks import boolean
from sandbox.stripe_api.errors import StripeApiError

SANDBOX_TAX_PERCENT = 10
PROMOTION_CODES = {"SANDBOX10": 10}  # code: percent off the line items


def checked_options(params: dict[str, Any]) -> dict[str, Any]:
    """The session fields for the request's `automatic_tax` and `allow_promotion_codes`,
    once checked as Stripe checks them."""
    requested_tax = params.get("automatic_tax")
    tax = False
    if requested_tax is not None:
        if not isinstance(requested_tax, dict) or "enabled" not in requested_tax:
            raise StripeApiError(
                400,
                "Missing required param: automatic_tax[enabled].",
                code="parameter_missing",
                param="automatic_tax[enabled]",
            )
        tax = boolean(requested_tax["enabled"], "automatic_tax[enabled]")
    codes = boolean(params.get("allow_promotion_codes"), "allow_promotion_codes")
    if codes and params.get("discounts"):
        raise StripeApiError(
            400,
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            param="allow_promotion_codes",
        )
    return {
        "automatic_tax": {"enabled": tax, "status": "requires_location_inputs" if tax else None},
        "allow_promotion_codes": codes,
    }


def apply_code(session: dict[str, Any], code: str) -> None:
    """The customer entered `code` on the page: its discount, or Stripe's refusal."""
    if session["status"] != "open" or not session.get("allow_promotion_codes"):
        raise StripeApiError(400, "This Checkout Session does not take promotion codes.")
    percent = PROMOTION_CODES.get(code.strip().upper())
    if percent is None:
        raise StripeApiError(400, "This code is invalid.", code="resource_missing")
    session["total_details"]["amount_discount"] = session["amount_subtotal"] * percent // 100
    _settle(session, tax=0)


def charge_tax(session: dict[str, Any]) -> None:
    """At payment, with the address known: the session's tax, when it asked for Stripe Tax."""
    if not (session.get("automatic_tax") or {}).get("enabled"):
        return
    details = session["total_details"]
    taxed = session["amount_subtotal"] - details["amount_discount"] + details["amount_shipping"]
    session["automatic_tax"]["status"] = "complete"
    _settle(session, tax=taxed * SANDBOX_TAX_PERCENT // 100)


def _settle(session: dict[str, Any], tax: int) -> None:
    details = session["total_details"]
    details["amount_tax"] = tax
    session["amount_total"] = (
        session["amount_subtotal"] - details["amount_discount"] + details["amount_shipping"] + tax
    )
