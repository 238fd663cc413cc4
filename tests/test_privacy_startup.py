"""Start-up refuses to run when conversations would not be encrypted at rest: no key, a
short key, a key that does not open the stored data, values sealed in the old form, or a
tracker store that cannot be imported (where Rasa itself would fall back to memory and only
warn).

The refusals are the checks the server runs at start-up, called here in-process: the
connector's store (`ConnectorStore`, what `WhatsAppInput.from_credentials` opens), the
tracker store (`EncryptedTrackerStore`, what Rasa builds from endpoints.yml) and the channel's
check of the agent's tracker store. One live test proves the real `rasa run` stops on such a
refusal, starts once it is resolved, and then drops raw bodies past retention.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import TrackerStore
from rasa.utils.endpoints import EndpointConfig

from connectors.privacy.reencrypt import reencrypt
from connectors.storage.checks import StoredDataError
from connectors.storage.encrypted_tracker import EncryptedTrackerStore
from connectors.storage.keys import ENV_VAR, KeyConfigError, new_key_line
from connectors.storage.opening import open_store
from connectors.storage.schema import customers, inbound_messages
from connectors.storage.sealing import column_context, digest
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.startup_checks import refuse_unencrypted_tracker_store
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import start_bot

WHATSAPP: dict[str, object] = {"connectors.whatsapp.channel.WhatsAppInput": {}}
ENCRYPTED = "connectors.storage.encrypted_tracker.EncryptedTrackerStore"
OLD_FORM_HINT = "run `make privacy ARGS=reencrypt` once"


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database start-up opens (DATABASE_URL), empty."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def seal_in_the_old_form(url: str, customer: str) -> None:
    """A customer row whose sealed id names no row, as the release before row binding
    sealed it."""
    store = open_store(url)
    store.messages.touch_customer(customer, 1.0)
    old_form = store.keys.seal(customer, column_context("wa_customers", "customer_sealed"))
    with store.engine.begin() as connection:
        connection.execute(customers.update().values(customer_sealed=old_form))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", f"{ENV_VAR} is not set"),
        ("k1:c2hvcnQ=", "key 'k1' is 5 bytes; it must be 32"),
    ],
)
def test_missing_or_short_key_stops_start_up(
    database_url: str, monkeypatch: pytest.MonkeyPatch, key: str, message: str
) -> None:
    monkeypatch.setenv(ENV_VAR, key)
    with pytest.raises(KeyConfigError, match=message):
        open_store(database_url)
    with pytest.raises(KeyConfigError, match=message):
        EncryptedTrackerStore()


def test_a_key_that_does_not_open_the_database_stops_start_up(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(database_url).messages.touch_customer("15550700001", 1.0)  # under the test key
    monkeypatch.setenv(ENV_VAR, new_key_line("test"))  # same id, another key
    with pytest.raises(StoredDataError, match="key 'test' does not open the table wa_customers"):
        open_store(database_url)


def test_values_sealed_before_they_named_their_row_stop_start_up_until_reencrypt(
    database_url: str,
) -> None:
    seal_in_the_old_form(database_url, "15550700003")
    with pytest.raises(StoredDataError) as refused:
        open_store(database_url)
    assert "table wa_customers holds 1 row(s) sealed in the old form" in str(refused.value)
    assert OLD_FORM_HINT in str(refused.value)
    assert reencrypt(open_store(database_url, verify=False))["wa_customers"] == 1
    assert open_store(database_url).messages.last_inbound_at("15550700003") == 1.0


@pytest.mark.rasa_core  # imports Rasa's core: TensorFlow
def test_a_tracker_store_that_cannot_be_imported_stops_start_up(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rasa.core.agent import Agent  # TensorFlow: only on the worker of the RASA_CORE group

    with pytest.warns(UserWarning, match="Using `InMemoryTrackerStore` instead"):
        fallen_back = TrackerStore.create(EndpointConfig(type="connectors.privacy.Missing"))
    with pytest.raises(SystemExit):
        refuse_unencrypted_tracker_store(Agent(tracker_store=fallen_back))
    assert "conversations would not be encrypted at rest" in capsys.readouterr().out
    encrypted = TrackerStore.create(EndpointConfig(type=ENCRYPTED))
    refuse_unencrypted_tracker_store(Agent(tracker_store=encrypted))  # Rasa's wrappers and all


@pytest.mark.live
def test_the_real_server_refuses_then_starts_and_drops_raw_bodies_past_retention(
    tmp_path: Path, graph_api: GraphApiEmulator
) -> None:
    env = {
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
    }
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    seal_in_the_old_form(url, "15550700004")
    with pytest.raises(RuntimeError, match="bot did not start") as refused:
        start_bot(tmp_path, env, WHATSAPP).stop()
    assert OLD_FORM_HINT in str(refused.value)

    store = open_store(url, verify=False)
    reencrypt(store)
    store.messages.record_inbound(
        "wamid.old", "15550700002", now=time.time() - 40 * 86400, payload="{}"
    )
    store.messages.record_inbound(
        "wamid.recent", "15550700002", now=time.time() - 86400, payload="{}"
    )
    bot = start_bot(tmp_path, env, WHATSAPP)
    try:
        deadline = time.monotonic() + 30
        while payloads(store)[digest("wamid.old")] is not None and time.monotonic() < deadline:
            time.sleep(0.2)
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
