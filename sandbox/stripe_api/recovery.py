"""Stripe's checks of a Checkout Session's `after_expiration` (abandoned-checkout
recovery); what recovery then does is sandbox/checkout_recovery.py's."""

from __future__ import annotations

from typing import Any

from sandbox import stripe_params
from sandbox.stripe_api.checks import boolean, check_known
from sandbox.stripe_api.errors import StripeApiError


def after_expiration(params: dict[str, Any]) -> dict[str, Any] | None:
    """The `after_expiration` a new session carries (None when not asked for), once the
    request's is checked as Stripe checks it."""
    requested = params.get("after_expiration")
    if requested is None:
        return None
    if not isinstance(requested, dict):
        raise StripeApiError(400, "Invalid object: after_expiration", param="after_expiration")
    check_known(requested, stripe_params.AFTER_EXPIRATION, "after_expiration")
    recovery = requested.get("recovery")
    if not isinstance(recovery, dict):
        raise StripeApiError(
            400, "Invalid object: after_expiration[recovery]", param="after_expiration[recovery]"
        )
    check_known(recovery, stripe_params.RECOVERY, "after_expiration[recovery]")
    if "enabled" not in recovery:
        raise StripeApiError(
            400,
            "Missing required param: after_expiration[recovery][enabled].",
            code="parameter_missing",
            param="after_expiration[recovery][enabled]",
        )
    return {
        "recovery": {
            "enabled": boolean(recovery["enabled"], "after_expiration[recovery][enabled]"),
            "allow_promotion_codes": boolean(
                recovery.get("allow_promotion_codes"),
                "after_expiration[recovery][allow_promotion_codes]",
            ),
            "expires_at": None,
            "url": None,
        }
    }
