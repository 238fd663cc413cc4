"""Every variable either process reads: a bad value stops start-up with one ConfigError line
that names the variable and says what was wrong, never repeating a secret."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from actions.settings import (
    ActionServerSettings,
    ActionSettings,
    StripeSettings,
    meta_catalog_id,
)
from connectors.settings import ServerSettings, WhatsAppSettings
from connectors.storage.keys import KeyRing, new_key_line
from shop_contract.catalog import Catalog, default_catalog
from shop_contract.env_settings import ConfigError, secret_list

REQUIRED_WHATSAPP = {
    "WHATSAPP_ACCESS_TOKEN": "test-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
    "WHATSAPP_APP_SECRET": "test-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
}
STRIPE = {"STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12)}
FLOW_MESSAGE = {"WHATSAPP_FLOW_ID": "1000000000000001", "WHATSAPP_APP_SECRET": "s"}


@pytest.fixture(scope="module")
def plain_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """A complete, valid environment for the Rasa server's side."""
    return {
        **REQUIRED_WHATSAPP,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'bot.db'}",
        "TRACKER_ENCRYPTION_KEY": new_key_line("test"),
    }


def server_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        ServerSettings.from_env(environ)
    return str(raised.value)


# (variable, bad value, what the line says); one line each, and the variable comes first.
SERVER_CASES = [
    ("WHATSAPP_ACCESS_TOKEN", "", "not set — messages cannot be sent"),
    ("WHATSAPP_PHONE_NUMBER_ID", "  ", "not set — messages cannot be sent"),
    ("WHATSAPP_APP_SECRET", " , ,", "no secret in the comma-separated list"),
    ("WHATSAPP_VERIFY_TOKEN", "", "not set — Meta's webhook verification"),
    ("WHATSAPP_API_BASE", "graph.facebook.com/v23.0", "expected a URL like https://"),
    ("WHATSAPP_TEMPLATE_PARAMS", "text, total", "unknown field(s) total"),
    ("WHATSAPP_NOTIFICATION_TRANSPORT", "sms", "'sms' is not one of graph, wasender"),
    ("WASENDER_API_BASE", "www.wasenderapi.com", "expected a URL like https://"),
    ("REPLAY_LEASE_SECONDS", "0", "must be more than 0"),
    ("REPLAY_INTERVAL_SECONDS", "soon", "expected a number of seconds, e.g. 30"),
    ("OUTBOX_BASE_DELAY_SECONDS", "-5", "must be more than 0"),
    ("OUTBOX_POLL_SECONDS", "inf", "expected a number of seconds"),
    ("RAW_BODY_RETENTION_DAYS", "1", "must be at least 2 — replays after a crash"),
    ("RAW_BODY_RETENTION_DAYS", "a month", "expected a number of days"),
    ("WHATSAPP_FLOW_PRIVATE_KEY", "not a key", "neither PEM text nor a readable file path"),
    ("FLOW_TURN_BUDGET_SECONDS", "9", "must be between 0.1 and 8"),
    ("FLOW_TURN_BUDGET_SECONDS", "3s", "expected seconds, e.g. 3"),
    ("STRIPE_WEBHOOK_SECRET", "sk_test_123", "each secret is whsec_ and more"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_", "each secret is whsec_ and more"),
    ("STRIPE_WEBHOOK_SECRET", ",", "no secret in the comma-separated list"),
    ("DATABASE_URL", "localhost:5432", "not a database URL; expected e.g. sqlite:///"),
    ("TRACKER_ENCRYPTION_KEY", "", "is not set"),
    ("TRACKER_ENCRYPTION_KEY", "k1:c2hvcnQ=", "key 'k1' is 5 bytes; it must be 32"),
    ("HANDOVER_WEBHOOK_URL", "inbox.example.com/handover", "expected a URL"),
    ("HANDOVER_WEBHOOK_URL", "http://inbox.example.com/handover", "must be https://"),
    ("HANDOVER_WEBHOOK_URL", "http://127.0.0.1.example.com/h", "must be https://"),
    ("HANDOVER_WEBHOOK_SECRET", "s3cret", "too short: use at least 16 random characters"),
    ("HANDOVER_STAFF_WA_ID", "+49 151 2345678", "the number's digits with country code"),
    ("HANDOVER_TIMEOUT_MINUTES", "0", "must be more than 0"),
    ("HANDOVER_TIMEOUT_MINUTES", "an hour", "expected minutes, e.g. 240"),
    ("OPERATOR_API_TOKEN", "admin", "too short: use at least 16 random characters"),
]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    SERVER_CASES,
    ids=[f"{variable}={value!r}" for variable, value, _ in SERVER_CASES],
)
def test_each_server_variable_with_a_bad_value_is_one_line_naming_it(
    server_env: dict[str, str], variable: str, value: str, says: str
) -> None:
    message = server_error({**server_env, variable: value})

    assert message.startswith(variable), message
    assert says in message, message
    assert "\n" not in message


def test_the_wasender_transport_needs_its_key(server_env: dict[str, str]) -> None:
    message = server_error({**server_env, "WHATSAPP_NOTIFICATION_TRANSPORT": "wasender"})
    assert message == (
        "WASENDER_API_KEY: not set — needed when the transport is wasender (see .env.example)"
    )


def test_a_passphrase_for_a_plain_key_is_named(server_env: dict[str, str], plain_pem: str) -> None:
    message = server_error(
        {
            **server_env,
            "WHATSAPP_FLOW_PRIVATE_KEY": plain_pem,
            "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE": "a passphrase",
        }
    )
    assert message.startswith("WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE: set, but the PEM")


def test_a_complete_environment_is_read_once_into_every_group(
    server_env: dict[str, str], plain_pem: str, tmp_path: Path
) -> None:
    webhook = ["whsec_" + secrets.token_hex(8) for _ in range(2)]
    server = ServerSettings.from_env(
        {
            **server_env,
            "WHATSAPP_FLOW_PRIVATE_KEY": plain_pem.replace("\n", "\\n"),
            "FLOW_TURN_BUDGET_SECONDS": "2.5",
            "STRIPE_WEBHOOK_SECRET": f" {webhook[0]} , {webhook[1]} ",
            "RAW_BODY_RETENTION_DAYS": "7",
            "REPLAY_LEASE_SECONDS": "60",
        }
    )

    assert server.whatsapp.verify_token == "test-verify-token"
    assert server.whatsapp.app_secrets == ("test-app-secret",)
    assert server.whatsapp.raw_body_retention_seconds == 7 * 86400
    assert server.whatsapp.replay_lease_seconds == 60.0
    assert server.flow.private_key is not None and server.flow.turn_budget_seconds == 2.5
    assert server.stripe.secrets == tuple(webhook)
    assert server.database.url == server_env["DATABASE_URL"]
    assert (tmp_path / "var").is_dir()  # the SQLite file's folder exists before it is opened
    assert isinstance(server.keys, KeyRing) and server.keys.key_ids == ["test"]


def test_optional_parts_are_off_when_unset(server_env: dict[str, str]) -> None:
    server = ServerSettings.from_env(server_env)
    assert server.flow.private_key is None
    assert server.stripe.secrets == ()
    assert not server.handover.notifies and server.handover.operator_token is None


def test_the_hand_over_webhook_needs_its_secret(server_env: dict[str, str]) -> None:
    url = {"HANDOVER_WEBHOOK_URL": "https://inbox.example.com/handover"}
    assert server_error({**server_env, **url}).startswith("HANDOVER_WEBHOOK_SECRET: not set")
    secret = secrets.token_hex(16)
    server = ServerSettings.from_env(
        {**server_env, **url, "HANDOVER_WEBHOOK_SECRET": f"{secret},{secret[::-1]}"}
    )
    assert server.handover.notifies and server.handover.webhook_secrets == (secret, secret[::-1])
    assert server.handover.timeout_minutes == 1440
    for loopback in ("http://127.0.0.1:8099/h", "http://[::1]:8099/h", "http://localhost/h"):
        local = {"HANDOVER_WEBHOOK_URL": loopback, "HANDOVER_WEBHOOK_SECRET": secret}
        assert ServerSettings.from_env({**server_env, **local}).handover.notifies


# --- the action server --------------------------------------------------------------------

ACTION_CASES = [
    ({"STRIPE_SECRET_KEY": "pk_test_123"}, "STRIPE_SECRET_KEY", "expected a secret key"),
    ({**STRIPE, "STRIPE_API_BASE": "api.stripe.com"}, "STRIPE_API_BASE", "expected a URL"),
    ({**STRIPE, "CHECKOUT_EXPIRY_MINUTES": "ten"}, "CHECKOUT_EXPIRY_MINUTES", "whole minutes"),
    ({**STRIPE, "CHECKOUT_EXPIRY_MINUTES": "29"}, "CHECKOUT_EXPIRY_MINUTES", "between 30 and 1440"),
    ({**STRIPE, "CHECKOUT_SUCCESS_URL": "thanks"}, "CHECKOUT_SUCCESS_URL", "an http(s) URL"),
    ({**STRIPE, "CHECKOUT_CANCEL_URL": "/cancel"}, "CHECKOUT_CANCEL_URL", "an http(s) URL"),
    ({**STRIPE, "CHECKOUT_RECOVERY": "sure"}, "CHECKOUT_RECOVERY", "true or false"),
    (
        {**STRIPE, "CHECKOUT_RECOVERY_PROMOTION_CODES": "2"},
        "CHECKOUT_RECOVERY_PROMOTION_CODES",
        "true or false",
    ),
    ({**STRIPE, "STRIPE_AUTOMATIC_TAX": "sure"}, "STRIPE_AUTOMATIC_TAX", "true or false"),
    ({**STRIPE, "STRIPE_PROMOTION_CODES": "1x"}, "STRIPE_PROMOTION_CODES", "true or false"),
    ({**STRIPE, "CHECKOUT_REMINDER_MINUTES": "-5"}, "CHECKOUT_REMINDER_MINUTES", "at least 0"),
    ({**STRIPE, "CHECKOUT_REMINDER_MINUTES": "2"}, "CHECKOUT_REMINDER_MINUTES", "at least 5"),
    (
        {**STRIPE, "CHECKOUT_EXPIRY_MINUTES": "30", "CHECKOUT_REMINDER_MINUTES": "30"},
        "CHECKOUT_REMINDER_MINUTES",
        "at most 25",
    ),
    ({**FLOW_MESSAGE, "WHATSAPP_APP_SECRET": ","}, "WHATSAPP_APP_SECRET", "no secret"),
    ({**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": "-1"}, "FLOW_TOKEN_TTL_HOURS", "more than 0"),
    ({**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": "0"}, "FLOW_TOKEN_TTL_HOURS", "more than 0"),
    ({**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": "72h"}, "FLOW_TOKEN_TTL_HOURS", "number of hours"),
    ({**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": "nan"}, "FLOW_TOKEN_TTL_HOURS", "more than 0"),
]


@pytest.mark.parametrize(
    ("environ", "variable", "says"),
    ACTION_CASES,
    ids=[f"{variable}={environ[variable]!r}" for environ, variable, _ in ACTION_CASES],
)
def test_each_action_variable_with_a_bad_value_is_one_line_naming_it(
    environ: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ActionSettings.from_env(environ)
    message = str(raised.value)

    assert message.startswith(f"{variable}: "), message
    assert says in message, message
    assert "\n" not in message


SERVER_ACCESS_CASES = [
    ({"ACTION_SERVER_HOST": "0.0.0.0"}, "ACTION_SERVER_TOKEN", "listening on 0.0.0.0 needs it"),  # noqa: S104
    ({"SANIC_HOST": "10.0.0.5"}, "ACTION_SERVER_TOKEN", "listening on 10.0.0.5 needs it"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "expected one of DEBUG, INFO"),
]


@pytest.mark.parametrize(("environ", "variable", "says"), SERVER_ACCESS_CASES)
def test_each_action_server_variable_with_a_bad_value_is_named(
    environ: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ActionServerSettings.from_env(environ)
    assert str(raised.value).startswith(f"{variable}: ")
    assert says in str(raised.value)


def test_stripe_and_the_flow_message_are_off_until_their_key_variables_are_set() -> None:
    assert ActionSettings.from_env({"CHECKOUT_EXPIRY_MINUTES": "60"}) == ActionSettings(None, None)
    assert ActionSettings.from_env({"WHATSAPP_FLOW_ID": "1"}).flow_message is None


@pytest.mark.parametrize(("hours", "seconds"), [("72", 72 * 3600), ("0.5", 1800), ("36", 129600)])
def test_flow_token_ttl_hours_sets_the_token_lifetime(hours: str, seconds: int) -> None:
    settings = ActionSettings.from_env({**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": hours})
    assert settings.flow_message is not None
    assert settings.flow_message.ttl_seconds == seconds


def test_action_settings_read_the_checkout_settings() -> None:
    settings = ActionSettings.from_env(
        {
            **STRIPE,
            "CHECKOUT_EXPIRY_MINUTES": " 90 ",
            "CHECKOUT_SUCCESS_URL": "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}",
        }
    )
    assert settings.stripe is not None
    assert settings.stripe.expiry_minutes == 90
    assert settings.stripe.success_url.endswith("{CHECKOUT_SESSION_ID}")


# --- secrets stay out of the messages -----------------------------------------------------

SECRET = secrets.token_hex(16)
LEAKY: list[tuple[Callable[[dict[str, str]], object], dict[str, str]]] = [
    (ActionSettings.from_env, {"STRIPE_SECRET_KEY": "pk_live_" + SECRET}),
    (ActionSettings.from_env, {**FLOW_MESSAGE, "FLOW_TOKEN_TTL_HOURS": SECRET}),
    (ActionServerSettings.from_env, {"ACTION_SERVER_HOST": "::", "LOG_LEVEL": SECRET}),
]


@pytest.mark.parametrize(("read", "environ"), LEAKY)
def test_errors_never_repeat_the_value(
    read: Callable[[dict[str, str]], object], environ: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        read(environ)
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "value",
    [
        "sk_live_" + SECRET,
        "whsec_ok," + SECRET,
        "postgresql://shop:" + SECRET + "@db:port/shop",
    ],
    ids=["stripe secret key", "webhook secret list", "database password"],
)
def test_server_errors_never_repeat_the_value(server_env: dict[str, str], value: str) -> None:
    variable = "DATABASE_URL" if value.startswith("postgresql") else "STRIPE_WEBHOOK_SECRET"
    assert SECRET not in server_error({**server_env, variable: value})


def test_secret_lists_drop_blanks_and_keep_the_order() -> None:
    assert secret_list(" old , new ,") == ("old", "new")
    assert secret_list(("a",)) == ("a",)


@pytest.mark.parametrize("value", ["cat-123", "12 34", "1" * 33, "-5"])
def test_a_catalog_id_that_is_not_digits_is_named_by_both_processes(
    value: str, server_env: dict[str, str]
) -> None:
    environ = {**server_env, "WHATSAPP_CATALOG_ID": value}
    assert server_error(environ).startswith("WHATSAPP_CATALOG_ID: expected the catalog's id")
    with pytest.raises(ConfigError, match=r"^WHATSAPP_CATALOG_ID: expected the catalog's id"):
        ActionSettings.from_env(environ)


def test_the_catalog_id_is_read_by_both_processes_and_off_when_blank(
    server_env: dict[str, str],
) -> None:
    environ = {**server_env, "WHATSAPP_CATALOG_ID": " 2000000000000002 "}
    assert ServerSettings.from_env(environ).whatsapp.catalog_id == "2000000000000002"
    assert ActionSettings.from_env(environ).catalog_id == "2000000000000002"
    blank = {**server_env, "WHATSAPP_CATALOG_ID": " "}
    assert ServerSettings.from_env(blank).whatsapp.catalog_id is None
    assert ActionSettings.from_env(blank).catalog_id is None


def test_a_catalog_id_without_any_retailer_id_in_the_catalog_stops_start_up() -> None:
    unmapped = Catalog(tuple(replace(p, retailer_id=None) for p in default_catalog()))
    with pytest.raises(ConfigError, match=r"^WHATSAPP_CATALOG_ID: set, but no product"):
        meta_catalog_id({"WHATSAPP_CATALOG_ID": "2000000000000002"}, unmapped)
    assert meta_catalog_id({"WHATSAPP_CATALOG_ID": "2000000000000002"}) == "2000000000000002"


def test_a_settings_object_shows_no_secret_in_its_repr() -> None:
    whatsapp = WhatsAppSettings(
        "tok-1234567890", "123", ("appsecret-0987654321",), "verify-5555", "https://graph.example"
    )
    stripe_settings = StripeSettings.from_env({"STRIPE_SECRET_KEY": "sk_test_" + "7" * 24})
    shown = repr(whatsapp) + repr(stripe_settings)
    for secret in ("tok-1234567890", "appsecret-0987654321", "verify-5555", "7" * 24):
        assert secret not in shown
    assert "access_token=***" in shown and "secret_key=***" in shown
    assert "phone_number_id='123'" in shown  # what is not secret still shows
