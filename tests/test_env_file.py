"""Which env file the servers read: ENV_FILE when set, else the bot directory's `.env`,
nothing under SANDBOX=1; what the environment sets wins. Checked on `load_env_file` and
in-process on the two start-ups that use it: the WhatsApp channel's `from_credentials`
and the action server's `main` (which refuses a malformed setting before serving)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.settings import action_settings
from connectors.storage.keys import ENV_VAR, new_key_line
from connectors.whatsapp.channel import WhatsAppInput
from scripts import action_server, env_file
from shop_contract.env_settings import ConfigError, load_env_file

pytestmark = (
    pytest.mark.rasa_core
)  # loads TensorFlow: one worker runs these (tests/support/rasa_core_marker.py)

PREFIXES = (
    *("WHATSAPP_", "WASENDER_", "STRIPE_", "CHECKOUT_", "FLOW_", "ACTION_SERVER_"),
    *("REPLAY_", "OUTBOX_", "RAW_BODY_", "RASA_REST_"),
)

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def env_line(**values: str) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


def whatsapp(verify_token: str) -> dict[str, str]:
    return {
        "WHATSAPP_ACCESS_TOKEN": "test-access-token",
        "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "WHATSAPP_APP_SECRET": "test-app-secret",
        "WHATSAPP_VERIFY_TOKEN": verify_token,
    }


@pytest.fixture
def bot_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory of a bot with no settings in its environment. The env file
    writes into os.environ itself (not through monkeypatch): every variable and the
    connector logger's level are put back afterwards."""
    saved = dict(os.environ)
    level = logging.getLogger("connectors").level
    for name in list(os.environ):
        if name.startswith(PREFIXES) or name in ("ENV_FILE", "SANDBOX", "LOG_LEVEL"):
            del os.environ[name]
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'var' / 'bot.db'}"
    os.environ[ENV_VAR] = new_key_line("test")
    monkeypatch.chdir(tmp_path)
    action_settings.cache_clear()
    yield tmp_path
    action_settings.cache_clear()
    os.environ.clear()
    os.environ.update(saved)
    logging.getLogger("connectors").setLevel(level)


def channel() -> WhatsAppInput:
    made = WhatsAppInput.from_credentials({})
    made.store.engine.dispose()
    return made


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        WhatsAppInput.from_credentials({})
    captured = capsys.readouterr()
    return ANSI_COLOUR.sub("", captured.out + captured.err)  # Rasa prints errors in red


# --- load_env_file ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _keep_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests below change directory; the next test starts where this one did."""
    monkeypatch.chdir(Path.cwd())


def test_the_bot_directorys_env_fills_in_what_the_environment_lacks(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(env_line(A="from file", B="from file"), encoding="utf-8")
    environ = {"B": "from environment"}
    os.chdir(tmp_path)
    assert load_env_file(environ) == tmp_path / ".env"
    assert environ == {"A": "from file", "B": "from environment"}


def test_a_blank_variable_in_the_environment_does_not_hide_the_files_value(
    tmp_path: Path,
) -> None:
    # e.g. `TRACKER_ENCRYPTION_KEY=` from a compose file whose ${VAR} is unset: the file's
    # key must win, or `make run` would mint a second key and the bot stop on its database.
    (tmp_path / ".env").write_text(env_line(KEY="from file", EMPTY=""), encoding="utf-8")
    environ = {"KEY": "  ", "EMPTY": "from environment"}
    os.chdir(tmp_path)
    load_env_file(environ)
    assert environ == {"KEY": "from file", "EMPTY": "from environment"}


def test_env_file_replaces_the_env_in_the_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(env_line(A="dotenv"), encoding="utf-8")
    named = tmp_path / "deploy.env"
    named.write_text(env_line(B="named"), encoding="utf-8")
    os.chdir(tmp_path)
    environ = {"ENV_FILE": "deploy.env"}  # relative: from the working directory, as run.sh
    assert load_env_file(environ) == Path("deploy.env")
    assert environ == {"ENV_FILE": "deploy.env", "B": "named"}


def test_nothing_is_read_in_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(env_line(A="dotenv"), encoding="utf-8")
    os.chdir(tmp_path)
    for environ in ({"SANDBOX": "1"}, {"SANDBOX": "1", "ENV_FILE": str(tmp_path / ".env")}):
        assert load_env_file(environ) is None
        assert "A" not in environ


def test_no_env_file_is_fine_but_a_missing_named_one_is_an_error(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    assert load_env_file({}) is None
    assert load_env_file({"SANDBOX": "off"}) is None
    with pytest.raises(ConfigError, match=r"^ENV_FILE: no file at .*missing\.env$"):
        load_env_file({"ENV_FILE": str(tmp_path / "missing.env")})


# --- the WhatsApp channel -----------------------------------------------------------------


def test_the_channel_reads_the_env_in_the_bot_directory(bot_dir: Path) -> None:
    (bot_dir / ".env").write_text(env_line(**whatsapp("from-dotenv")), encoding="utf-8")
    assert channel().settings.verify_token == "from-dotenv"


def test_the_channel_reads_env_file_instead_of_the_directorys_env(bot_dir: Path) -> None:
    (bot_dir / ".env").write_text(env_line(**whatsapp("from-dotenv")), encoding="utf-8")
    named = bot_dir / "elsewhere" / "shop.env"
    named.parent.mkdir()
    named.write_text(
        env_line(**whatsapp("from-env-file"), WHATSAPP_NOTIFICATION_TEMPLATE="order_update"),
        encoding="utf-8",
    )
    os.environ["ENV_FILE"] = str(named)

    settings = channel().settings
    assert settings.verify_token == "from-env-file"
    assert settings.notification_template == "order_update"


def test_the_environment_wins_over_the_env_file(bot_dir: Path) -> None:
    (bot_dir / ".env").write_text(env_line(**whatsapp("from-dotenv")), encoding="utf-8")
    os.environ["WHATSAPP_VERIFY_TOKEN"] = "from-environment"
    assert channel().settings.verify_token == "from-environment"


def test_the_sandbox_channel_reads_no_env_file(bot_dir: Path) -> None:
    """The sandbox gives every setting itself; a developer's .env (a real token, a template)
    must not add to them."""
    (bot_dir / ".env").write_text(
        env_line(**whatsapp("from-dotenv"), WHATSAPP_NOTIFICATION_TEMPLATE="real_template"),
        encoding="utf-8",
    )
    os.environ.update({**whatsapp("from-sandbox"), "SANDBOX": "1"})

    settings = channel().settings
    assert settings.verify_token == "from-sandbox"
    assert settings.notification_template is None


def test_a_sandbox_without_settings_does_not_fall_back_to_the_env(
    bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bot_dir / ".env").write_text(env_line(**whatsapp("from-dotenv")), encoding="utf-8")
    os.environ["SANDBOX"] = "1"
    assert "WhatsApp channel: WHATSAPP_ACCESS_TOKEN: not set" in refusal(capsys)


def test_a_missing_env_file_stops_the_channel_with_one_line(
    bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ.update(whatsapp("from-environment"))
    os.environ["ENV_FILE"] = str(bot_dir / "typo.env")
    assert f"WhatsApp channel: ENV_FILE: no file at {bot_dir / 'typo.env'}" in refusal(capsys)


def test_a_malformed_setting_in_the_env_stops_the_channel_with_one_line(
    bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bot_dir / ".env").write_text(
        env_line(**whatsapp("from-dotenv"), REPLAY_LEASE_SECONDS="-1"), encoding="utf-8"
    )
    lines = refusal(capsys).strip().splitlines()
    assert lines == ["WhatsApp channel: REPLAY_LEASE_SECONDS: must be more than 0"]


# --- the action server --------------------------------------------------------------------


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start-up that got past the settings would build and run the app: fail instead."""

    def refuse(*_: object) -> None:
        raise AssertionError("the action server started with a malformed setting")

    monkeypatch.setattr(action_server, "build_app", refuse)


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize(
    ("value", "says"),
    [("-1", "must be more than 0"), ("72 hours", "expected a number of hours, e.g. 72")],
)
def test_the_action_server_refuses_a_bad_flow_token_ttl_at_start(
    bot_dir: Path, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    os.environ.update({"WHATSAPP_FLOW_ID": "1", "WHATSAPP_APP_SECRET": "s"})
    os.environ["FLOW_TOKEN_TTL_HOURS"] = value

    assert action_server.main(["--port", "0"]) == 2
    assert capsys.readouterr().err == f"action server: FLOW_TOKEN_TTL_HOURS: {says}\n"


@pytest.mark.usefixtures("no_serving")
def test_the_action_server_reads_the_env_file_before_checking(
    bot_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bot_dir / ".env").write_text(
        env_line(STRIPE_SECRET_KEY="sk_test_x", CHECKOUT_EXPIRY_MINUTES="10"), encoding="utf-8"
    )
    assert action_server.main(["--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "action server: CHECKOUT_EXPIRY_MINUTES: must be between 30 and 1440\n"
    )


# --- make run ------------------------------------------------------------------------------


def test_run_sh_gets_the_env_file_as_export_lines_by_the_same_rules(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        'A="two words"\nB=from file\nexport C=it\'s\nNOT-A-NAME=1\n', encoding="utf-8"
    )
    os.chdir(tmp_path)
    assert env_file.exports({"B": "from environment"}) == [
        "export A='two words'",
        "export C='it'\"'\"'s'",
    ]
    assert env_file.exports({"SANDBOX": "1"}) == []
    with pytest.raises(ConfigError, match=r"^ENV_FILE: no file at"):
        env_file.exports({"ENV_FILE": "typo.env"})
