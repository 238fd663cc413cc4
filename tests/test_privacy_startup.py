"""The real `rasa run` refuses to start when conversations would not be encrypted at rest:
no key, a short key, a key that does not open the stored data, or a tracker store that
cannot be imported (where Rasa itself would fall back to memory and only warn)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.privacy.reencrypt import reencrypt
from connectors.storage.keys import ENV_VAR, new_key_line
from connectors.storage.store import (
    ConnectorStore,
    column_context,
    customers,
    digest,
    inbound_messages,
)
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import start_bot

WHATSAPP: dict[str, object] = {"connectors.whatsapp.channel.WhatsAppInput": {}}


@pytest.fixture
def whatsapp_env(graph_api: GraphApiEmulator) -> dict[str, str]:
    return {
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
    }


def refusal(workdir: Path, env: dict[str, str], **store: object) -> str:
    """Starts the bot expecting it to stop; returns its log."""
    with pytest.raises(RuntimeError, match="bot did not start") as refused:
        bot = start_bot(workdir, env, WHATSAPP, **store)  # type: ignore[arg-type]
        bot.stop()
    return str(refused.value) + "".join(
        path.read_text(errors="replace") for path in workdir.glob("*.log")
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", f"{ENV_VAR} is not set"),
        ("k1:c2hvcnQ=", "key 'k1' is 5 bytes; it must be 32"),
    ],
)
def test_missing_or_short_key_stops_start_up(
    tmp_path: Path,
    whatsapp_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    message: str,
) -> None:
    monkeypatch.setenv(ENV_VAR, key)
    assert message in refusal(tmp_path, whatsapp_env)


def test_a_key_that_does_not_open_the_database_stops_start_up(
    tmp_path: Path, whatsapp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = start_bot(tmp_path, whatsapp_env, WHATSAPP)  # creates the tables under the test key
    bot.stop()
    ConnectorStore(f"sqlite:///{tmp_path / 'bot.db'}").touch_customer("15550700001", 1.0)
    monkeypatch.setenv(ENV_VAR, new_key_line("test"))  # same id, another key
    assert "key 'test' does not open the table wa_customers" in refusal(tmp_path, whatsapp_env)


def test_values_sealed_before_they_named_their_row_stop_start_up_until_reencrypt(
    tmp_path: Path, whatsapp_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    store = ConnectorStore(url)
    store.touch_customer("15550700003", 1.0)
    old_form = store.keys.seal("15550700003", column_context("wa_customers", "customer_sealed"))
    with store.engine.begin() as connection:  # as the release before row binding sealed it
        connection.execute(customers.update().values(customer_sealed=old_form))

    log = refusal(tmp_path, whatsapp_env)
    assert "table wa_customers holds 1 row(s) sealed in the old form" in log
    assert "run `make privacy ARGS=reencrypt` once" in log
    assert reencrypt(ConnectorStore(url, verify=False))["wa_customers"] == 1
    start_bot(tmp_path, whatsapp_env, WHATSAPP).stop()
    assert ConnectorStore(url).last_inbound_at("15550700003") == 1.0


def test_a_tracker_store_that_cannot_be_imported_stops_start_up(
    tmp_path: Path, whatsapp_env: dict[str, str]
) -> None:
    log = refusal(tmp_path, whatsapp_env, tracker_store={"type": "connectors.privacy.Missing"})
    assert "conversations would not be encrypted at rest" in log


def test_a_running_bot_drops_raw_bodies_past_retention(
    tmp_path: Path, whatsapp_env: dict[str, str]
) -> None:
    store = ConnectorStore(f"sqlite:///{tmp_path / 'bot.db'}")
    store.record_inbound("wamid.old", "15550700002", now=time.time() - 40 * 86400, payload="{}")
    store.record_inbound("wamid.recent", "15550700002", now=time.time() - 86400, payload="{}")
    bot = start_bot(tmp_path, whatsapp_env, WHATSAPP)
    try:
        deadline = time.monotonic() + 30
        while payloads(store)[digest("wamid.old")] is not None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        bot.stop()
    kept = payloads(store)
    assert kept[digest("wamid.old")] is None and kept[digest("wamid.recent")] is not None


def payloads(store: ConnectorStore) -> dict[str, str | None]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(inbound_messages.c.message_id, inbound_messages.c.payload)
        ).all()
    return {row.message_id: row.payload for row in rows}
