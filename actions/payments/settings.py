"""The action server's Stripe settings, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import stripe

DEFAULT_EXPIRY_MINUTES = 60
EXPIRY_RANGE_MINUTES = (30, 24 * 60)  # what Stripe accepts for expires_at
DEFAULT_RETURN_URL = "https://wa.me/"


class ConfigError(ValueError):
    """A payment setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class StripeSettings:
    """The action server's Stripe configuration, read from the environment."""

    secret_key: str
    api_base: str
    success_url: str
    cancel_url: str
    expiry_minutes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StripeSettings | None:
        """None without STRIPE_SECRET_KEY; ConfigError naming the variable when malformed."""
        secret_key = environ.get("STRIPE_SECRET_KEY", "").strip()
        if not secret_key:
            return None
        if not secret_key.startswith(("sk_", "rk_")):
            raise ConfigError("STRIPE_SECRET_KEY: expected a secret key starting sk_ or rk_")
        raw_expiry = environ.get("CHECKOUT_EXPIRY_MINUTES", "").strip()
        try:
            expiry = int(raw_expiry) if raw_expiry else DEFAULT_EXPIRY_MINUTES
        except ValueError:
            raise ConfigError("CHECKOUT_EXPIRY_MINUTES: expected whole minutes") from None
        low, high = EXPIRY_RANGE_MINUTES
        if not low <= expiry <= high:
            raise ConfigError(f"CHECKOUT_EXPIRY_MINUTES: must be between {low} and {high}")
        return cls(
            secret_key=secret_key,
            api_base=environ.get("STRIPE_API_BASE", "").strip() or stripe.DEFAULT_API_BASE,
            success_url=environ.get("CHECKOUT_SUCCESS_URL", "").strip() or DEFAULT_RETURN_URL,
            cancel_url=environ.get("CHECKOUT_CANCEL_URL", "").strip() or DEFAULT_RETURN_URL,
            expiry_minutes=expiry,
        )


@lru_cache(maxsize=1)
def stripe_settings() -> StripeSettings | None:
    return StripeSettings.from_env(os.environ)
