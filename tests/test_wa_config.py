"""WhatsAppSettings.from_env: a complete environment parses; a bad one names the variable."""

from __future__ import annotations

import pytest

from connectors.settings import (
    DEFAULT_GRAPH_API_BASE,
    DEFAULT_WASENDER_API_BASE,
    WhatsAppSettings,
)
from shop_contract.env_settings import ConfigError

REQUIRED = {
    "WHATSAPP_ACCESS_TOKEN": "test-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
    "WHATSAPP_APP_SECRET": "old-secret, new-secret",
    "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
}


def env(**changes: str | None) -> dict[str, str]:
    """The required variables, with `changes` applied (None removes a variable)."""
    found = {**REQUIRED, **changes}
    return {name: value for name, value in found.items() if value is not None}


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        WhatsAppSettings.from_env(environ)
    return str(raised.value)


def test_required_variables_only_get_the_defaults() -> None:
    assert WhatsAppSettings.from_env(env()) == WhatsAppSettings(
        access_token="test-access-token",
        phone_number_id="100000000000001",
        app_secrets=("old-secret", "new-secret"),
        verify_token="test-verify-token",
        api_base=DEFAULT_GRAPH_API_BASE,
        notification_template=None,
        template_language="en",
        template_params=("text",),
        notification_transport="graph",
        wasender_api_key=None,
        wasender_api_base=DEFAULT_WASENDER_API_BASE,
    )


def test_complete_environment() -> None:
    settings = WhatsAppSettings.from_env(
        env(
            WHATSAPP_ACCESS_TOKEN="  padded-token  ",
            WHATSAPP_API_BASE="http://127.0.0.1:8999/v23.0/",
            WHATSAPP_NOTIFICATION_TEMPLATE="order_update",
            WHATSAPP_TEMPLATE_LANGUAGE="de",
            WHATSAPP_TEMPLATE_PARAMS="text, first_line",
            WHATSAPP_NOTIFICATION_TRANSPORT="wasender",
            WASENDER_API_KEY="test-wasender-key",
            WASENDER_API_BASE="http://127.0.0.1:8998/api/",
        )
    )

    assert settings.access_token == "padded-token"
    assert settings.app_secrets == ("old-secret", "new-secret")
    assert settings.api_base == "http://127.0.0.1:8999/v23.0"
    assert settings.notification_template == "order_update"
    assert settings.template_language == "de"
    assert settings.template_params == ("text", "first_line")
    assert settings.notification_transport == "wasender"
    assert settings.wasender_api_key == "test-wasender-key"
    assert settings.wasender_api_base == "http://127.0.0.1:8998/api"


def test_blank_optional_variables_mean_the_defaults() -> None:
    settings = WhatsAppSettings.from_env(
        env(
            WHATSAPP_API_BASE=" ",
            WHATSAPP_NOTIFICATION_TEMPLATE="",
            WHATSAPP_TEMPLATE_LANGUAGE=" ",
            WHATSAPP_NOTIFICATION_TRANSPORT="",
            WASENDER_API_BASE="",
        )
    )

    assert settings.api_base == DEFAULT_GRAPH_API_BASE
    assert settings.notification_template is None
    assert settings.template_language == "en"
    assert settings.notification_transport == "graph"
    assert settings.wasender_api_base == DEFAULT_WASENDER_API_BASE


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("missing", [None, "", "   "])
def test_each_missing_required_variable_is_named(name: str, missing: str | None) -> None:
    message = config_error(env(**{name: missing}))

    assert message.startswith(f"{name}:"), message


def test_app_secret_with_only_separators_is_named() -> None:
    assert config_error(env(WHATSAPP_APP_SECRET=" , ,")).startswith("WHATSAPP_APP_SECRET:")


def test_unknown_template_param_is_named() -> None:
    message = config_error(env(WHATSAPP_TEMPLATE_PARAMS="text, order_total"))

    assert message.startswith("WHATSAPP_TEMPLATE_PARAMS:")
    assert "order_total" in message


def test_unknown_transport_is_named() -> None:
    message = config_error(env(WHATSAPP_NOTIFICATION_TRANSPORT="sms"))

    assert message.startswith("WHATSAPP_NOTIFICATION_TRANSPORT:")
    assert "sms" in message


@pytest.mark.parametrize("key", [None, "", "  "])
def test_wasender_transport_without_key_is_named(key: str | None) -> None:
    message = config_error(env(WHATSAPP_NOTIFICATION_TRANSPORT="wasender", WASENDER_API_KEY=key))

    assert message.startswith("WASENDER_API_KEY:")


@pytest.mark.parametrize("base", ["graph.facebook.com/v23.0", "ftp://example.test", "v23.0"])
def test_bad_api_base_is_named(base: str) -> None:
    assert config_error(env(WHATSAPP_API_BASE=base)).startswith("WHATSAPP_API_BASE:")


def test_errors_do_not_repeat_the_secrets() -> None:
    messages = [
        config_error(env(WHATSAPP_VERIFY_TOKEN=None)),
        config_error(env(WHATSAPP_TEMPLATE_PARAMS="bogus")),
        config_error(env(WHATSAPP_NOTIFICATION_TRANSPORT="wasender")),
    ]

    for message in messages:
        for secret in ("test-access-token", "old-secret", "new-secret", "test-verify-token"):
            assert secret not in message


def test_raw_body_retention_is_thirty_days_unless_set_and_never_under_two() -> None:
    assert WhatsAppSettings.from_env(env()).raw_body_retention_seconds == 30 * 86400
    assert (
        WhatsAppSettings.from_env(env(RAW_BODY_RETENTION_DAYS="7")).raw_body_retention_seconds
        == 7 * 86400
    )
    assert "at least 2" in config_error(env(RAW_BODY_RETENTION_DAYS="1"))
    assert "a number of days" in config_error(env(RAW_BODY_RETENTION_DAYS="a month"))
