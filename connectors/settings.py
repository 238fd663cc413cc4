"""The connector's settings, read from the environment once at start-up.

A missing or malformed required setting stops start-up with one line that names the
variable and says what to do; nothing half-configured accepts traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from connectors.flows.keys import FlowKeyError, load_private_key
from shop_contract.app_secrets import split_secrets

DEFAULT_GRAPH_API_BASE = "https://graph.facebook.com/v23.0"
DEFAULT_WASENDER_API_BASE = "https://www.wasenderapi.com/api"
TEMPLATE_PARAM_FIELDS = ("text", "first_line")
TRANSPORTS = ("graph", "wasender")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _required(environ: Mapping[str, str], name: str, why: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name}: not set — {why} (see .env.example)")
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be more than 0")
    return value


DEFAULT_RAW_BODY_RETENTION_DAYS = 30.0


def raw_body_retention_seconds(environ: Mapping[str, str]) -> float:
    """How long raw webhook payloads and message bodies are kept (RAW_BODY_RETENTION_DAYS)."""
    raw = environ.get("RAW_BODY_RETENTION_DAYS", "").strip()
    try:
        days = float(raw) if raw else DEFAULT_RAW_BODY_RETENTION_DAYS
    except ValueError:
        raise ConfigError("RAW_BODY_RETENTION_DAYS: expected a number of days") from None
    if days < 2:
        raise ConfigError(
            "RAW_BODY_RETENTION_DAYS: at least 2 — replays after a crash need the last day's"
        )
    return days * 86400


@dataclass(frozen=True)
class WhatsAppSettings:
    """Everything the WhatsApp channel needs to receive and send messages."""

    access_token: str
    phone_number_id: str
    app_secrets: tuple[str, ...]
    verify_token: str
    api_base: str = DEFAULT_GRAPH_API_BASE
    notification_template: str | None = None
    template_language: str = "en"
    template_params: tuple[str, ...] = ("text",)
    notification_transport: str = "graph"
    wasender_api_key: str | None = None
    wasender_api_base: str = DEFAULT_WASENDER_API_BASE
    replay_lease_seconds: float = 120.0
    replay_interval_seconds: float = 30.0
    outbox_base_delay_seconds: float = 5.0
    outbox_poll_seconds: float = 5.0
    raw_body_retention_seconds: float = DEFAULT_RAW_BODY_RETENTION_DAYS * 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WhatsAppSettings:
        app_secrets = split_secrets(
            _required(environ, "WHATSAPP_APP_SECRET", "the webhook cannot verify Meta's signatures")
        )
        if not app_secrets:
            raise ConfigError("WHATSAPP_APP_SECRET: no secret in the comma-separated list")
        template_params = tuple(
            p.strip()
            for p in environ.get("WHATSAPP_TEMPLATE_PARAMS", "text").split(",")
            if p.strip()
        )
        unknown = [p for p in template_params if p not in TEMPLATE_PARAM_FIELDS]
        if unknown:
            raise ConfigError(
                f"WHATSAPP_TEMPLATE_PARAMS: unknown field(s) {', '.join(unknown)}; "
                f"use {', '.join(TEMPLATE_PARAM_FIELDS)}"
            )
        transport = environ.get("WHATSAPP_NOTIFICATION_TRANSPORT", "graph").strip() or "graph"
        if transport not in TRANSPORTS:
            raise ConfigError(
                f"WHATSAPP_NOTIFICATION_TRANSPORT: '{transport}' is not one of "
                + ", ".join(TRANSPORTS)
            )
        wasender_key = environ.get("WASENDER_API_KEY", "").strip() or None
        if transport == "wasender" and not wasender_key:
            raise ConfigError("WASENDER_API_KEY: not set — needed when the transport is wasender")
        api_base = environ.get("WHATSAPP_API_BASE", "").strip() or DEFAULT_GRAPH_API_BASE
        if not api_base.startswith(("https://", "http://")):
            raise ConfigError("WHATSAPP_API_BASE: expected a URL like " + DEFAULT_GRAPH_API_BASE)
        return cls(
            access_token=_required(environ, "WHATSAPP_ACCESS_TOKEN", "messages cannot be sent"),
            phone_number_id=_required(
                environ, "WHATSAPP_PHONE_NUMBER_ID", "messages cannot be sent"
            ),
            app_secrets=app_secrets,
            verify_token=_required(
                environ, "WHATSAPP_VERIFY_TOKEN", "Meta's webhook verification cannot succeed"
            ),
            api_base=api_base.rstrip("/"),
            notification_template=environ.get("WHATSAPP_NOTIFICATION_TEMPLATE", "").strip() or None,
            template_language=environ.get("WHATSAPP_TEMPLATE_LANGUAGE", "").strip() or "en",
            template_params=template_params,
            notification_transport=transport,
            wasender_api_key=wasender_key,
            replay_lease_seconds=_seconds(environ, "REPLAY_LEASE_SECONDS", 120.0),
            replay_interval_seconds=_seconds(environ, "REPLAY_INTERVAL_SECONDS", 30.0),
            outbox_base_delay_seconds=_seconds(environ, "OUTBOX_BASE_DELAY_SECONDS", 5.0),
            outbox_poll_seconds=_seconds(environ, "OUTBOX_POLL_SECONDS", 5.0),
            raw_body_retention_seconds=raw_body_retention_seconds(environ),
            wasender_api_base=(
                environ.get("WASENDER_API_BASE", "").strip() or DEFAULT_WASENDER_API_BASE
            ).rstrip("/"),
        )


DEFAULT_FLOW_TURN_BUDGET_SECONDS = 3.0
MAX_FLOW_TURN_BUDGET_SECONDS = 8.0  # Meta gives up at 10 s; keep room for the network


@dataclass(frozen=True)
class FlowSettings:
    """The Flow data endpoint: our private key, parsed once, and the turn budget."""

    private_key: RSAPrivateKey | None
    turn_budget_seconds: float = DEFAULT_FLOW_TURN_BUDGET_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FlowSettings:
        raw_key = environ.get("WHATSAPP_FLOW_PRIVATE_KEY", "").strip()
        try:
            key = (
                load_private_key(raw_key, environ.get("WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE"))
                if raw_key
                else None
            )
        except FlowKeyError as error:
            raise ConfigError(str(error)) from None
        raw_budget = environ.get("FLOW_TURN_BUDGET_SECONDS", "").strip()
        try:
            budget = float(raw_budget) if raw_budget else DEFAULT_FLOW_TURN_BUDGET_SECONDS
        except ValueError:
            raise ConfigError("FLOW_TURN_BUDGET_SECONDS: expected seconds, e.g. 3") from None
        if not 0.1 <= budget <= MAX_FLOW_TURN_BUDGET_SECONDS:
            raise ConfigError(
                f"FLOW_TURN_BUDGET_SECONDS: must be between 0.1 and {MAX_FLOW_TURN_BUDGET_SECONDS}"
            )
        return cls(private_key=key, turn_budget_seconds=budget)
