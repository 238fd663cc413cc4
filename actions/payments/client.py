"""The process's one Stripe client.

A pinned API version, explicit retries and timeouts, and an async HTTP client so a slow Stripe
call never blocks other customers.
"""

from __future__ import annotations

from functools import lru_cache

import stripe

from actions.payments.errors import PaymentsNotConfigured
from actions.settings import action_settings
from shop_contract.stripe_metadata import STRIPE_API_VERSION

# Pinned (shop_contract.stripe_metadata): the shapes our code reads are those of this version.
# tests/test_checkout_links.py fails when a stripe-python upgrade changes its default, so the
# bump is a conscious one.
__all__ = ["STRIPE_API_VERSION", "stripe_client"]
STRIPE_NETWORK_RETRIES = 2
STRIPE_TIMEOUT_SECONDS = 20.0


@lru_cache(maxsize=1)
def stripe_client() -> stripe.StripeClient:
    """The process's one client. Raises PaymentsNotConfigured without a secret key."""
    settings = action_settings().stripe
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
