"""The action server's settings, read from the environment once and checked at start-up.

scripts/action_server.py reads `action_settings()` before it serves, so a malformed value
(`FLOW_TOKEN_TTL_HOURS=-1`, `CHECKOUT_EXPIRY_MINUTES=ten`) stops start-up with one line
naming the variable instead of failing inside an action; the actions read the same cached
settings. Stripe and the Flow message are off (None) while their key variables are unset.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass as plain_dataclass
from functools import lru_cache
from typing import Any

from pydantic import Field, validator
from pydantic.dataclasses import dataclass

from shop_contract.catalog import Catalog, default_catalog
from shop_contract.env_settings import (
    ConfigError,
    EnvConfig,
    MaskedRepr,
    http_url,
    is_set,
    read_env,
    secret_list,
)
from shop_contract.flow_tokens import DEFAULT_TTL_SECONDS
from shop_contract.meta_catalog import CATALOG_ID_VARIABLE, read_catalog_id

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"  # stripe.DEFAULT_API_BASE (a test checks)
DEFAULT_EXPIRY_MINUTES = 60
EXPIRY_RANGE_MINUTES = (30, 24 * 60)  # what Stripe accepts for expires_at
DEFAULT_RETURN_URL = "https://wa.me/"
REMINDER_MARGIN_MINUTES = 5  # a reminder this close to the link's creation or expiry is noise
STRIPE_KEY_VARIABLE = "STRIPE_SECRET_KEY"
FLOW_ID_VARIABLE = "WHATSAPP_FLOW_ID"
APP_SECRET_VARIABLE = "WHATSAPP_APP_SECRET"  # noqa: S105 - the variable's name
TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"  # noqa: S105 - the variable's name
DEFAULT_HOST = "127.0.0.1"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, config=EnvConfig, repr=False)
class StripeSettings(MaskedRepr):
    """Stripe Checkout: the secret key and how payment links are made."""

    secret_key: str = Field(
        ..., env=STRIPE_KEY_VARIABLE, expected="a secret key starting sk_ or rk_"
    )
    api_base: str = Field(
        default=DEFAULT_STRIPE_API_BASE,
        env="STRIPE_API_BASE",
        expected=f"a URL like {DEFAULT_STRIPE_API_BASE}",
    )
    success_url: str = Field(
        default=DEFAULT_RETURN_URL, env="CHECKOUT_SUCCESS_URL", expected="an http(s) URL"
    )
    cancel_url: str = Field(
        default=DEFAULT_RETURN_URL, env="CHECKOUT_CANCEL_URL", expected="an http(s) URL"
    )
    expiry_minutes: int = Field(
        default=DEFAULT_EXPIRY_MINUTES,
        env="CHECKOUT_EXPIRY_MINUTES",
        ge=EXPIRY_RANGE_MINUTES[0],
        le=EXPIRY_RANGE_MINUTES[1],
        expected="whole minutes, e.g. 60",
    )
    # Stripe's abandoned-checkout recovery: an expired session carries a recovery URL that
    # opens a copy of it (after_expiration.recovery), which the customer is sent once.
    recovery: bool = Field(default=True, env="CHECKOUT_RECOVERY", expected="true or false")
    recovery_promotion_codes: bool = Field(
        default=False, env="CHECKOUT_RECOVERY_PROMOTION_CODES", expected="true or false"
    )
    # Stripe Tax computes the tax from the customer's address on the Checkout page (the
    # account needs Stripe Tax set up); customers may enter the shop's promotion codes there.
    # The confirmation shows what Stripe charged for each.
    automatic_tax: bool = Field(default=False, env="STRIPE_AUTOMATIC_TAX", expected="true or false")
    promotion_codes: bool = Field(
        default=False, env="STRIPE_PROMOTION_CODES", expected="true or false"
    )
    # Minutes before a link expires that the customer is reminded of it; 0 is off.
    reminder_minutes: int = Field(
        default=0,
        env="CHECKOUT_REMINDER_MINUTES",
        ge=0,
        expected="whole minutes, e.g. 15, or 0 for no reminder",
    )

    @validator("reminder_minutes")
    def _reminder_within_the_link(cls, value: int, values: dict[str, Any]) -> int:
        if 0 < value < REMINDER_MARGIN_MINUTES:
            raise ValueError(f"must be 0 (off) or at least {REMINDER_MARGIN_MINUTES}")
        expiry = values.get("expiry_minutes")
        if value and isinstance(expiry, int) and value > expiry - REMINDER_MARGIN_MINUTES:
            raise ValueError(
                f"must be at most {expiry - REMINDER_MARGIN_MINUTES} (CHECKOUT_EXPIRY_MINUTES "
                f"less {REMINDER_MARGIN_MINUTES}): a reminder goes out while the link still works"
            )
        return value

    @validator("secret_key")
    def _secret_key(cls, value: str) -> str:
        if not value.startswith(("sk_", "rk_")):
            raise TypeError("not a secret or restricted key")  # never repeat the value
        return value

    _urls = validator("api_base", "success_url", "cancel_url", allow_reuse=True)(http_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StripeSettings:
        return read_env(cls, environ)


@dataclass(frozen=True, config=EnvConfig, repr=False)
class FlowMessageSettings(MaskedRepr):
    """The order Flow's message: which Flow, and the flow token's secret and lifetime."""

    flow_id: str = Field(..., env=FLOW_ID_VARIABLE, why="the order Flow cannot be sent")
    app_secrets: tuple[str, ...] = Field(
        ..., env=APP_SECRET_VARIABLE, why="flow tokens cannot be sealed"
    )
    ttl_hours: float = Field(
        default=DEFAULT_TTL_SECONDS / 3600,
        env="FLOW_TOKEN_TTL_HOURS",
        gt=0,
        expected="a number of hours, e.g. 72",
    )

    _secrets = validator("app_secrets", pre=True, allow_reuse=True)(secret_list)

    @property
    def ttl_seconds(self) -> int:
        return math.ceil(self.ttl_hours * 3600)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FlowMessageSettings:
        return read_env(cls, environ)


@plain_dataclass(frozen=True)
class ActionSettings:
    """What the actions read: Stripe (None without STRIPE_SECRET_KEY), the Flow message
    (None unless WHATSAPP_FLOW_ID and WHATSAPP_APP_SECRET are both set) and the Meta
    catalog's id (None without WHATSAPP_CATALOG_ID: no product messages, no carts)."""

    stripe: StripeSettings | None
    flow_message: FlowMessageSettings | None
    catalog_id: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ActionSettings:
        """ConfigError, naming the variable, for the first malformed setting in use."""
        return cls(
            stripe=(
                StripeSettings.from_env(environ) if is_set(environ, STRIPE_KEY_VARIABLE) else None
            ),
            flow_message=(
                FlowMessageSettings.from_env(environ)
                if is_set(environ, FLOW_ID_VARIABLE, APP_SECRET_VARIABLE)
                else None
            ),
            catalog_id=meta_catalog_id(environ),
        )


def meta_catalog_id(environ: Mapping[str, str], catalog: Catalog | None = None) -> str | None:
    """WHATSAPP_CATALOG_ID, when the catalog (data/catalog.yml) maps products to it (a
    catalog with no product to offer or to take in a cart is a mistake, not a setting)."""
    catalog_id = read_catalog_id(environ)
    if catalog_id is not None and not (catalog or default_catalog()).in_meta_catalog:
        raise ConfigError(
            f"{CATALOG_ID_VARIABLE}: set, but no product in data/catalog.yml has a retailer_id "
            "(the item's Content ID in that catalog); add them, or unset the variable"
        )
    return catalog_id


@lru_cache(maxsize=1)
def action_settings() -> ActionSettings:
    """The process's settings, read on first use: scripts/action_server.py at start-up."""
    return ActionSettings.from_env(os.environ)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@dataclass(frozen=True, config=EnvConfig, repr=False)
class ActionServerSettings(MaskedRepr):
    """Where the action server listens, the token it wants, its log level.

    The host is ACTION_SERVER_HOST, else SANIC_HOST (what rasa_sdk reads), else loopback;
    beyond loopback a token is required: anyone reaching the port could run the actions.
    """

    host: str | None = Field(default=None, env="ACTION_SERVER_HOST")
    sanic_host: str | None = Field(default=None, env="SANIC_HOST")
    token: str | None = Field(default=None, env=TOKEN_VARIABLE)
    log_level: str = Field(
        default="INFO", env="LOG_LEVEL", expected="one of " + ", ".join(LOG_LEVELS)
    )

    @validator("token", always=True)
    def _token_beyond_loopback(cls, value: str | None, values: dict[str, Any]) -> str | None:
        host = values.get("host") or values.get("sanic_host") or DEFAULT_HOST
        if value is None and not is_loopback(host):
            raise ConfigError(
                f"{TOKEN_VARIABLE}: not set — listening on {host} needs it (anyone reaching "
                f"the port could run the shop's actions); set it, or listen on {DEFAULT_HOST}"
            )
        return value

    @validator("log_level")
    def _log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise TypeError("not a log level")
        return value.upper()

    @property
    def listen_host(self) -> str:
        return self.host or self.sanic_host or DEFAULT_HOST

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ActionServerSettings:
        return read_env(cls, environ)
