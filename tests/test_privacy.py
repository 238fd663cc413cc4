"""Encryption at rest, key rotation, start-up checks, and the customer's rights — on SQLite
and PostgreSQL, read back both through the stores and directly from the tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.privacy import EncryptedTrackerStore
from connectors.privacy.checks import StoredDataError
from connectors.privacy.keys import ENV_VAR, KeyConfigError, KeyRing, UnreadableError, new_key_line
from connectors.privacy.reencrypt import reencrypt
from connectors.privacy.rights import (
    erase_customer,
    expire_raw_bodies,
    export_customer,
    purge_older_than,
)
from connectors.store import ConnectorStore, digest, inbound_messages, stripe_events
from tests import redis_server
from tests.at_rest import found_in_sqlite_files, found_in_tables
from tests.live_bot import BIN, ROOT
from tests.postgres import temporary_database

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
ANNA, BORIS = "15550901111", "15550902222"
KEY_1, KEY_2 = new_key_line("k1"), new_key_line("k2")


# --- the key ring ---------------------------------------------------------------------------


def test_sealed_values_open_only_with_their_key_and_context() -> None:
    ring = KeyRing.parse(KEY_1)
    sealed = ring.seal("Main St 1", b"orders.address")
    assert sealed.startswith("e.k1.") and "Main" not in sealed
    assert ring.open(sealed, b"orders.address") == "Main St 1"
    assert ring.seal("Main St 1", b"orders.address") != sealed  # a fresh nonce every time
    with pytest.raises(UnreadableError, match="does not open"):
        ring.open(sealed, b"another.column")
    with pytest.raises(UnreadableError, match="does not open"):
        KeyRing.parse(new_key_line("k1")).open(sealed, b"orders.address")
    with pytest.raises(UnreadableError, match=r"key 'k1'.*has: k2"):
        KeyRing.parse(KEY_2).open(sealed, b"orders.address")
    with pytest.raises(UnreadableError, match="not an encrypted value"):
        ring.open("Main St 1", b"orders.address")
    for garbage in (sealed[:10] + "!!!" + sealed[10:], "e.k1.A", "e.k1.AAAA", "e.k1."):
        with pytest.raises(UnreadableError):
            ring.open(garbage, b"orders.address")


def test_pseudonyms_are_keyed_and_stable() -> None:
    ring = KeyRing.parse(f"{KEY_2},{KEY_1}")
    assert ring.pseudonym(ANNA) == ring.pseudonym(ANNA) != ring.pseudonym(BORIS)
    assert ANNA not in ring.pseudonym(ANNA)
    assert ring.pseudonyms(ANNA) == [ring.pseudonym(ANNA), KeyRing.parse(KEY_1).pseudonym(ANNA)]
    assert KeyRing.parse(new_key_line("k1")).pseudonym(ANNA) != ring.pseudonyms(ANNA)[1]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not set"),
        ("   ", "is not set"),
        ("k1:" + "QUJD", "is 3 bytes; it must be 32"),
        ("k1:" + "ab" * 32, "is 48 bytes; it must be 32"),  # hex read as base64
        ("no-colon-here", "must look like '<id>:<base64>'"),
        ("bad id!:" + KEY_1.split(":")[1], "must look like"),
        ("K1:" + KEY_1.split(":")[1], "lower-case"),
        ("k1:%%%%", "not valid base64"),
        (f"{KEY_1},{KEY_1}", "appears twice"),
    ],
)
def test_a_missing_or_weak_key_is_refused_with_its_fix(value: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        KeyRing.parse(value)


# --- stores on both databases ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            yield stack.enter_context(temporary_database("privacy"))
        else:
            yield f"sqlite:///{tmp_path / 'shop.db'}"


def tracker_store(url: str, keys: str) -> EncryptedTrackerStore:
    with mock.patch.dict(os.environ, {"DATABASE_URL": url, ENV_VAR: keys}):
        return EncryptedTrackerStore(domain=DOMAIN)


def converse(store: EncryptedTrackerStore, customer: str, text: str, at: float) -> None:
    """A new session in `customer`'s conversation: what they said and their address."""
    tracker = asyncio.run(store.retrieve(customer)) or DialogueStateTracker(customer, DOMAIN.slots)
    for event in (
        SessionStarted(timestamp=at),
        UserUttered(text, {"name": "order"}, timestamp=at),
        SlotSet("order_delivery", {"name": f"Name of {customer}", "street": "Main St 1"}, at),
    ):
        tracker.update(event)
    asyncio.run(store.save(tracker))


def connector_rows(store: ConnectorStore, customer: str) -> None:
    """One row of each kind of the connector's records for `customer` (ids carry a tag, not
    the number: Meta's and Stripe's ids never contain it either)."""
    tag = "anna" if customer == ANNA else "boris"
    store.record_inbound(f"wamid.{tag}", customer, payload=json.dumps({"text": "hi there"}))
    store.touch_customer(customer, time.time())
    store.record_outbound(f"wamid.out.{tag}", customer, "notification", "Order is confirmed")
    event = json.dumps({"metadata": {"whatsapp_user_id": customer}})
    store.record_stripe_event(f"evt_{tag}", "checkout.session.completed", event, customer)
    store.claim_fulfilment(f"cs_{tag}", f"evt_{tag}")
    store.enqueue_notification(f"evt_{tag}:0", customer, '{"type": "text"}')


def test_nothing_personal_is_stored_in_clear(database_url: str) -> None:
    trackers = tracker_store(database_url, KEY_1)
    converse(trackers, ANNA, "I'd like the pour-over kit", time.time())
    connector_rows(ConnectorStore(database_url, KeyRing.parse(KEY_1)), ANNA)
    forbidden = {
        "the number": ANNA,
        "the name": "Name of",
        "the street": "Main St",
        "text": "pour-over",
    }
    assert found_in_tables(database_url, forbidden) == []
    loaded = asyncio.run(trackers.retrieve(ANNA))
    assert loaded is not None and loaded.latest_message.text == "I'd like the pour-over kit"
    assert loaded.get_slot("order_delivery")["street"] == "Main St 1"


def test_rotation_keeps_old_data_readable_and_reencrypt_leaves_nothing_under_the_old_key(
    database_url: str,
) -> None:
    converse(tracker_store(database_url, KEY_1), ANNA, "first words", time.time() - 60)
    connector_rows(ConnectorStore(database_url, KeyRing.parse(KEY_1)), ANNA)

    rotated = f"{KEY_2},{KEY_1}"
    trackers = tracker_store(database_url, rotated)
    loaded = asyncio.run(trackers.retrieve(ANNA))
    assert loaded is not None and loaded.latest_message.text == "first words"
    store = ConnectorStore(database_url, KeyRing.parse(rotated))
    assert store.last_inbound_at(ANNA) is not None
    converse(trackers, ANNA, "second words", time.time())  # new writes use k2
    store.touch_customer(ANNA, time.time() + 5)  # a k2 row next to the k1 row

    counts = reencrypt(ConnectorStore(database_url, KeyRing.parse(rotated), verify=False))
    assert counts["events"] == 3 and counts["wa_customers"] == 1
    assert found_in_tables(database_url, {"k1 values": "e.k1.", "k1 pseudonyms": "h.k1."}) == []
    assert reencrypt(ConnectorStore(database_url, KeyRing.parse(rotated)))["events"] == 0

    only_new = tracker_store(database_url, KEY_2)  # k1 dropped from the ring: all still there
    full = asyncio.run(only_new.retrieve_full_tracker(ANNA))
    assert full is not None
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == [
        "first words",
        "second words",
    ]
    again = ConnectorStore(database_url, KeyRing.parse(KEY_2))
    assert again.last_inbound_at(ANNA) == pytest.approx(time.time() + 5, abs=5)
    assert [e.customer_key for e in again.notifications()] == [ANNA]


def test_start_up_refuses_a_wrong_or_removed_key(database_url: str) -> None:
    converse(tracker_store(database_url, KEY_1), ANNA, "hello", time.time())
    ConnectorStore(database_url, KeyRing.parse(KEY_1)).touch_customer(ANNA, time.time())

    impostor = new_key_line("k1")  # another key under the same id
    with pytest.raises(StoredDataError, match="key 'k1' does not open the conversations"):
        tracker_store(database_url, impostor)
    with pytest.raises(StoredDataError, match="key 'k1' does not open the table wa_customers"):
        ConnectorStore(database_url, KeyRing.parse(impostor))
    with pytest.raises(StoredDataError, match=r"3 event.*removed from TRACKER_ENCRYPTION_KEY"):
        tracker_store(database_url, KEY_2)  # k1 dropped before re-encryption
    with pytest.raises(KeyConfigError, match="is not set"):
        tracker_store(database_url, "")


def test_events_written_before_encryption_are_refused_then_encrypted(tmp_path: Path) -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    plain = SQLTrackerStore(domain=DOMAIN, host=url)
    asyncio.run(
        plain.save(
            DialogueStateTracker.from_events(ANNA, [UserUttered("old text", {"name": "greet"})])
        )
    )
    with pytest.raises(StoredDataError, match="make privacy ARGS=reencrypt"):
        tracker_store(url, KEY_1)
    assert reencrypt(ConnectorStore(url, KeyRing.parse(KEY_1), verify=False))["events"] == 1
    loaded = asyncio.run(tracker_store(url, KEY_1).retrieve(ANNA))
    assert loaded is not None and loaded.latest_message.text == "old text"
    assert found_in_tables(url, {"number": ANNA, "text": "old text"}) == []
    # Not even in free pages or the write-ahead log of the file.
    assert found_in_sqlite_files(tmp_path / "old.db", {"number": ANNA, "text": "old text"}) == []


# --- the customer's rights -------------------------------------------------------------------


def two_customers(url: str) -> tuple[EncryptedTrackerStore, ConnectorStore]:
    """Stores holding a conversation and connector rows for Anna and for Boris."""
    trackers = tracker_store(url, KEY_1)
    store = ConnectorStore(url, KeyRing.parse(KEY_1))
    for customer in (ANNA, BORIS):
        converse(trackers, customer, f"message from {customer}", time.time())
        connector_rows(store, customer)
    return trackers, store


def test_export_holds_everything_of_one_customer_and_nothing_of_others(database_url: str) -> None:
    _, store = two_customers(database_url)

    exported = export_customer(store, ANNA)
    text = json.dumps(exported)
    assert BORIS not in text and ANNA in text
    assert [e.get("text") for e in exported["conversation_events"] if e["event"] == "user"] == [
        f"message from {ANNA}"
    ]
    for table in ("wa_inbound_messages", "wa_outbound_messages", "wa_customers"):
        assert len(exported[table]) == 1, table
    assert exported["wa_inbound_messages"][0]["payload"] == {"text": "hi there"}
    assert exported["stripe_events"][0]["payload"]["metadata"]["whatsapp_user_id"] == ANNA
    assert exported["notification_outbox"][0]["body"] == {"type": "text"}


def test_erase_removes_everything_of_one_customer_only(database_url: str) -> None:
    trackers, store = two_customers(database_url)

    counts = erase_customer(store, ANNA)
    assert counts["events"] == 3 and counts["stripe_fulfilments"] == 1
    assert asyncio.run(trackers.retrieve(ANNA)) is None
    assert store.last_inbound_at(ANNA) is None
    emptied = export_customer(store, ANNA)
    assert all(emptied[name] == [] for name in emptied if name not in ("customer", "exported_at"))
    assert store.record_inbound("wamid.anna", ANNA)  # no trace left, not even for dedup
    assert len(export_customer(store, BORIS)["conversation_events"]) == 3
    assert store.claim_fulfilment("cs_boris", "evt_other") is False


def test_purge_removes_only_old_data(database_url: str) -> None:
    trackers = tracker_store(database_url, KEY_1)
    store = ConnectorStore(database_url, KeyRing.parse(KEY_1))
    old = time.time() - 100 * 86400
    converse(trackers, ANNA, "long ago", old)
    converse(trackers, BORIS, "just now", time.time())
    connector_rows(store, BORIS)
    store.record_inbound("wamid.old", ANNA, now=old)

    counts = purge_older_than(store, 90 * 86400)
    assert counts["events"] == 3 and counts["wa_inbound_messages"] == 1
    assert asyncio.run(trackers.retrieve(ANNA)) is None
    assert asyncio.run(trackers.retrieve(BORIS)) is not None
    assert store.record_inbound("wamid.old", ANNA) is True
    assert store.record_inbound("wamid.boris", BORIS) is False
    assert sum(purge_older_than(store, 90 * 86400).values()) == 0


def test_purge_waits_for_reencryption_after_a_rotation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    converse(tracker_store(url, KEY_1), ANNA, "long ago", time.time() - 100 * 86400)
    rotated = ConnectorStore(url, KeyRing.parse(f"{KEY_2},{KEY_1}"))
    with pytest.raises(StoredDataError, match="reencrypt"):
        purge_older_than(rotated, 90 * 86400)
    reencrypt(rotated)
    assert purge_older_than(rotated, 90 * 86400)["events"] == 3


def test_raw_bodies_are_dropped_after_the_retention_period(tmp_path: Path) -> None:
    store = ConnectorStore(f"sqlite:///{tmp_path / 'r.db'}", KeyRing.parse(KEY_1))
    store.record_inbound("wamid.old", ANNA, now=time.time() - 40 * 86400, payload="{}")
    store.record_inbound("wamid.new", ANNA, payload="{}")
    store.record_stripe_event("evt_new", "checkout.session.completed", "{}", ANNA)

    assert expire_raw_bodies(store, 30 * 86400)["wa_inbound_messages"] == 1
    with store.engine.connect() as connection:
        kept = dict(
            connection.execute(
                sa.select(inbound_messages.c.message_id, inbound_messages.c.payload)
            ).all()
        )
        assert connection.execute(sa.select(stripe_events.c.payload)).scalar() is not None
    assert kept[digest("wamid.old")] is None and kept[digest("wamid.new")] is not None
    assert store.record_inbound("wamid.old", ANNA) is False  # still counted for dedup


# --- the command line ------------------------------------------------------------------------


def privacy_cli(*args: str, url: str, keys: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, ENV_VAR: keys}
    return subprocess.run(
        [str(BIN / "python"), "-m", "connectors.privacy", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_exports_erases_and_explains_a_missing_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    converse(tracker_store(url, KEY_1), ANNA, "hello shop", time.time())
    exported = privacy_cli("export", "--customer", ANNA, url=url, keys=KEY_1)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["conversation_events"][1]["text"] == "hello shop"
    erased = privacy_cli("erase", "--customer", ANNA, "--yes", url=url, keys=KEY_1)
    assert erased.returncode == 0 and json.loads(erased.stdout)["rows"]["events"] == 3
    again = privacy_cli("erase", "--customer", "+" + ANNA, "--yes", url=url, keys=KEY_1)
    assert again.returncode == 1 and "nothing is held under this id" in again.stderr
    missing = privacy_cli("export", "--customer", ANNA, url=url, keys="")
    assert missing.returncode == 2 and "TRACKER_ENCRYPTION_KEY is not set" in missing.stderr
    assert ANNA not in erased.stdout + erased.stderr + missing.stderr
    keygen = privacy_cli("keygen", "--id", "k7", url=url, keys="")
    assert KeyRing.parse(keygen.stdout.strip().split("=", 1)[1]).current_id == "k7"
    bad_age = privacy_cli("purge", "--older-than", "soon", url=url, keys=KEY_1)
    assert bad_age.returncode == 2 and "like 90d" in bad_age.stderr


# --- data minimisation -----------------------------------------------------------------------

FLOW_INPUTS = {
    "RadioButtonsGroup",
    "Dropdown",
    "TextInput",
    "TextArea",
    "CheckboxGroup",
    "DatePicker",
    "OptIn",
}


def flow_fields(node: object) -> set[str]:
    """The names of every input component of a Flow JSON document."""
    if isinstance(node, dict):
        own = {node["name"]} if node.get("type") in FLOW_INPUTS else set()
        return own.union(*(flow_fields(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(flow_fields(value) for value in node))
    return set()


def test_the_order_flow_asks_only_what_an_order_needs() -> None:
    flow = json.loads((ROOT / "data" / "flows" / "order_flow.json").read_text(encoding="utf-8"))
    # What to send, how many, and where: no phone number (WhatsApp has it), no e-mail, no
    # birth date; payment details go to Stripe, never through the Flow.
    assert flow_fields(flow) == {"product", "quantity", "name", "street", "postal_code", "city"}


# --- the Redis lock store ---------------------------------------------------------------------


def test_redis_locks_name_the_pseudonym_not_the_number() -> None:
    import redis
    from rasa.utils.endpoints import EndpointConfig

    from connectors.privacy import PseudonymousRedisLockStore

    reason = redis_server.unreachable_reason()
    if reason:
        pytest.skip(reason)
    client = redis.Redis(host=redis_server.HOST, port=redis_server.PORT, socket_timeout=2)
    prefix = f"privacy{os.getpid()}"
    store = PseudonymousRedisLockStore(
        EndpointConfig(url="127.0.0.1", port=6379, db=0, key_prefix=prefix)
    )

    async def hold_and_look() -> list[tuple[bytes, bytes]]:
        async with store.lock(ANNA):
            return [(key, client.get(key) or b"") for key in client.keys(f"{prefix}:*")]

    held = asyncio.run(hold_and_look())
    assert len(held) == 1
    key, value = held[0]
    assert store.keys.pseudonym(ANNA).encode() in key
    assert ANNA.encode() not in key + value
    assert client.keys(f"{prefix}:*") == []  # released
