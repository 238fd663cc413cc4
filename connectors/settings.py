"""Every setting of the Rasa server's side, read from the environment and checked once.

`ServerSettings.from_env` reads all of them when the WhatsApp channel starts; a missing or
malformed one stops start-up with one line that names the variable and says what to do
(shop_contract/env_settings.py), so nothing half-configured accepts traffic. The groups
are also read alone: the operator tools read the database and key settings, the Flow CLI
the WhatsApp and Flow ones, the REST channel its token.

A low layer: it imports the key parsers (connectors/storage/keys.py, connectors/flows/keys.py)
and SQLAlchemy's URL parser, nothing that serves a request (`.importlinter` checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass as plain_dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import Field, validator
from pydantic.dataclasses import dataclass

from connectors.flows.keys import load_private_key
from connectors.storage.database import database_url
from connectors.storage.keys import ENV_VAR as KEY_VARIABLE
from connectors.storage.keys import KeyRing
from shop_contract.env_settings import (
    ConfigError,
    EnvConfig,
    MaskedRepr,
    http_url,
    https_url,
    is_set,
    long_secrets,
    read_env,
    seconds,
    secret_list,
)
from shop_contract.links import is_customer_link
from shop_contract.meta_catalog import read_catalog_id

DEFAULT_GRAPH_API_BASE = "https://graph.facebook.com/v23.0"
DEFAULT_WASENDER_API_BASE = "https://www.wasenderapi.com/api"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
DEFAULT_ORDERS_API_URL = "http://127.0.0.1:5005/webhooks/whatsapp/orders"
TEMPLATE_PARAM_FIELDS = ("text", "first_line")
TRANSPORTS = ("graph", "wasender")
DEFAULT_RAW_BODY_RETENTION_DAYS = 30.0
DEFAULT_FLOW_TURN_BUDGET_SECONDS = 3.0
MAX_FLOW_TURN_BUDGET_SECONDS = 8.0  # Meta gives up at 10 s; keep room for the network
FLOW_KEY_VARIABLE = "WHATSAPP_FLOW_PRIVATE_KEY"
FLOW_PASSPHRASE_VARIABLE = "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE"  # noqa: S105 - the name


@dataclass(frozen=True, config=EnvConfig, repr=False)
class RetentionSettings(MaskedRepr):
    """How long raw webhook payloads and message bodies are kept."""

    raw_body_retention_days: float = Field(
        default=DEFAULT_RAW_BODY_RETENTION_DAYS,
        env="RAW_BODY_RETENTION_DAYS",
        ge=2,
        expected="a number of days, e.g. 30",
        why="replays after a crash need the last day's",
    )

    @property
    def seconds(self) -> float:
        return self.raw_body_retention_days * 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RetentionSettings:
        return read_env(cls, environ)


@dataclass(frozen=True, config=EnvConfig, repr=False)
class WhatsAppSettings(MaskedRepr):
    """Everything the WhatsApp channel needs to receive and send messages."""

    access_token: str = Field(..., env="WHATSAPP_ACCESS_TOKEN", why="messages cannot be sent")
    phone_number_id: str = Field(..., env="WHATSAPP_PHONE_NUMBER_ID", why="messages cannot be sent")
    app_secrets: tuple[str, ...] = Field(
        ..., env="WHATSAPP_APP_SECRET", why="the webhook cannot verify Meta's signatures"
    )
    verify_token: str = Field(
        ..., env="WHATSAPP_VERIFY_TOKEN", why="Meta's webhook verification cannot succeed"
    )
    api_base: str = Field(
        default=DEFAULT_GRAPH_API_BASE,
        env="WHATSAPP_API_BASE",
        expected=f"a URL like {DEFAULT_GRAPH_API_BASE}",
    )
    notification_template: str | None = Field(default=None, env="WHATSAPP_NOTIFICATION_TEMPLATE")
    template_language: str = Field(default="en", env="WHATSAPP_TEMPLATE_LANGUAGE")
    template_params: tuple[str, ...] = Field(default=("text",), env="WHATSAPP_TEMPLATE_PARAMS")
    notification_transport: str = Field(default="graph", env="WHATSAPP_NOTIFICATION_TRANSPORT")
    wasender_api_key: str | None = Field(default=None, env="WASENDER_API_KEY")
    wasender_api_base: str = Field(
        default=DEFAULT_WASENDER_API_BASE,
        env="WASENDER_API_BASE",
        expected=f"a URL like {DEFAULT_WASENDER_API_BASE}",
    )
    replay_lease_seconds: float = seconds(120.0, "REPLAY_LEASE_SECONDS")
    replay_interval_seconds: float = seconds(30.0, "REPLAY_INTERVAL_SECONDS")
    outbox_base_delay_seconds: float = seconds(5.0, "OUTBOX_BASE_DELAY_SECONDS")
    outbox_poll_seconds: float = seconds(5.0, "OUTBOX_POLL_SECONDS")
    catalog_id: str | None = None  # WHATSAPP_CATALOG_ID (read_catalog_id), for product messages
    raw_body_retention_seconds: float = DEFAULT_RAW_BODY_RETENTION_DAYS * 86400

    _secrets = validator("app_secrets", pre=True, allow_reuse=True)(secret_list)

    @validator("api_base", "wasender_api_base")
    def _base_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @validator("template_params", pre=True)
    def _template_params(cls, value: Any) -> Any:
        names = (
            tuple(p.strip() for p in value.split(",") if p.strip())
            if isinstance(value, str)
            else value
        )
        unknown = [name for name in names if name not in TEMPLATE_PARAM_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; use {', '.join(TEMPLATE_PARAM_FIELDS)}"
            )
        return names

    @validator("notification_transport")
    def _transport(cls, value: str) -> str:
        if value not in TRANSPORTS:
            raise ValueError(f"'{value}' is not one of {', '.join(TRANSPORTS)}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WhatsAppSettings:
        retention = RetentionSettings.from_env(environ)
        settings: WhatsAppSettings = read_env(
            cls,
            environ,
            raw_body_retention_seconds=retention.seconds,
            catalog_id=read_catalog_id(environ),
        )
        if settings.notification_transport == "wasender" and not settings.wasender_api_key:
            raise ConfigError(
                "WASENDER_API_KEY: not set — needed when the transport is wasender "
                "(see .env.example)"
            )
        return settings


@dataclass(frozen=True, config=EnvConfig, repr=False)
class AppSecretSettings(MaskedRepr):
    """The app secret alone: what the Flow CLI signs a request with, as Meta does."""

    app_secrets: tuple[str, ...] = Field(
        ..., env="WHATSAPP_APP_SECRET", why="requests cannot be signed as Meta signs them"
    )

    _secrets = validator("app_secrets", pre=True, allow_reuse=True)(secret_list)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AppSecretSettings:
        return read_env(cls, environ)


@dataclass(frozen=True, config=EnvConfig, repr=False)
class FlowSettings(MaskedRepr):
    """The Flow data endpoint: our private key, parsed once (None: the endpoint is off),
    and how long a turn may take."""

    private_key: RSAPrivateKey | None = None
    turn_budget_seconds: float = Field(
        default=DEFAULT_FLOW_TURN_BUDGET_SECONDS,
        env="FLOW_TURN_BUDGET_SECONDS",
        ge=0.1,
        le=MAX_FLOW_TURN_BUDGET_SECONDS,
        expected="seconds, e.g. 3",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FlowSettings:
        """Parses the key here (tens of ms), not per request."""
        key = (
            load_private_key(environ[FLOW_KEY_VARIABLE], environ.get(FLOW_PASSPHRASE_VARIABLE))
            if is_set(environ, FLOW_KEY_VARIABLE)
            else None
        )
        return read_env(cls, environ, private_key=key)


@dataclass(frozen=True, config=EnvConfig, repr=False)
class StripeWebhookSettings(MaskedRepr):
    """The signing secrets of Stripe's webhook (none: the webhook is off)."""

    secrets: tuple[str, ...] = Field(default=(), env="STRIPE_WEBHOOK_SECRET")

    @validator("secrets", pre=True)
    def _signing_secrets(cls, value: Any) -> Any:
        secrets = secret_list(value)
        if not all(secret.startswith("whsec_") and secret[6:] for secret in secrets):
            raise ValueError(
                "each secret is whsec_ and more (Stripe dashboard > Developers > Webhooks > "
                "your endpoint > Signing secret)"
            )
        return secrets

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StripeWebhookSettings:
        return read_env(cls, environ)


@dataclass(frozen=True, config=EnvConfig, repr=False)
class HandoverSettings(MaskedRepr):
    """The hand-over to a person: how the shop is told (a signed webhook, without which there
    is no hand-over: it carries the customer's messages; a WhatsApp alert to staff besides),
    when the bot answers again, and the operator API's token (none: the API is off)."""

    webhook_url: str | None = Field(default=None, env="HANDOVER_WEBHOOK_URL", expected="a URL")
    webhook_secrets: tuple[str, ...] = Field(default=(), env="HANDOVER_WEBHOOK_SECRET")
    staff_wa_id: str | None = Field(default=None, env="HANDOVER_STAFF_WA_ID")
    timeout_minutes: float = Field(
        default=1440.0, env="HANDOVER_TIMEOUT_MINUTES", gt=0, expected="minutes, e.g. 240"
    )
    operator_token: str | None = Field(default=None, env="OPERATOR_API_TOKEN")

    _url = validator("webhook_url", allow_reuse=True)(https_url)

    @validator("webhook_secrets", pre=True)
    def _signing_secrets(cls, value: Any) -> Any:
        return long_secrets(secret_list(value))

    @validator("operator_token")
    def _token(cls, value: str | None) -> str | None:
        return value and long_secrets((value,))[0]

    @validator("staff_wa_id")
    def _number(cls, value: str | None) -> str | None:
        if value is not None and not (value.isdigit() and 6 <= len(value) <= 15):
            raise ValueError("the number's digits with country code, no + or spaces")
        return value

    @property
    def notifies(self) -> bool:  # the customer's messages reach the shop: a hand-over
        return bool(self.webhook_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HandoverSettings:
        settings: HandoverSettings = read_env(cls, environ)
        if settings.webhook_url and not settings.webhook_secrets:
            raise ConfigError(
                "HANDOVER_WEBHOOK_SECRET: not set — the hand-over webhook to "
                "HANDOVER_WEBHOOK_URL is signed with it (see .env.example)"
            )
        return settings


@dataclass(frozen=True, config=EnvConfig, repr=False)
class OrdersSettings(MaskedRepr):
    """The orders API (connectors/orders/): its bearer token (none: the API is off) and the
    Stripe key it refunds with (none: refunds are refused, shipping works); and where
    `make orders` (scripts/orders_cli.py) finds the API."""

    token: str | None = Field(default=None, env="ORDERS_API_TOKEN")
    api_url: str = Field(
        default=DEFAULT_ORDERS_API_URL,
        env="ORDERS_API_URL",
        expected=f"a URL like {DEFAULT_ORDERS_API_URL}",
    )
    stripe_secret_key: str | None = Field(
        default=None, env="STRIPE_SECRET_KEY", expected="a secret key starting sk_ or rk_"
    )
    stripe_api_base: str = Field(
        default=DEFAULT_STRIPE_API_BASE,
        env="STRIPE_API_BASE",
        expected=f"a URL like {DEFAULT_STRIPE_API_BASE}",
    )

    @validator("token")
    def _token(cls, value: str | None) -> str | None:
        return value and long_secrets((value,))[0]

    @validator("stripe_api_base")
    def _base_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @validator("api_url")
    def _api_url(cls, value: str) -> str:
        """The token goes with every call: https, or plain http only to this machine."""
        if not is_customer_link(value):
            raise ValueError("https, or http to 127.0.0.1/localhost only (the token goes with it)")
        return value.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OrdersSettings:
        return read_env(cls, environ)


@plain_dataclass(frozen=True)
class DatabaseSettings:
    """Where the tracker store and the connector's tables live (DATABASE_URL; the rules
    and the SQLite default are storage.database's, which Rasa's tracker store reads too)."""

    url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DatabaseSettings:
        return cls(database_url(environ))


@dataclass(frozen=True, config=EnvConfig, repr=False)
class RestSettings(MaskedRepr):
    """The bearer token of the REST channel (connectors/rest_channel.py)."""

    token: str | None = Field(default=None, env="RASA_REST_TOKEN")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RestSettings:
        return read_env(cls, environ)


def key_ring(environ: Mapping[str, str]) -> KeyRing:
    """TRACKER_ENCRYPTION_KEY parsed (KeyConfigError, a ConfigError, when unusable)."""
    return KeyRing.parse(environ.get(KEY_VARIABLE, ""))


@plain_dataclass(frozen=True)
class ServerSettings:
    """Every setting the WhatsApp channel's process uses, read and checked together."""

    whatsapp: WhatsAppSettings
    flow: FlowSettings
    stripe: StripeWebhookSettings
    database: DatabaseSettings
    keys: KeyRing
    handover: HandoverSettings
    orders: OrdersSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerSettings:
        """ConfigError, naming the variable, for the first missing or malformed setting."""
        return cls(
            whatsapp=WhatsAppSettings.from_env(environ),
            flow=FlowSettings.from_env(environ),
            stripe=StripeWebhookSettings.from_env(environ),
            database=DatabaseSettings.from_env(environ),
            keys=key_ring(environ),
            handover=HandoverSettings.from_env(environ),
            orders=OrdersSettings.from_env(environ),
        )
