"""Encryption at rest, key rotation, start-up checks, and the customer's rights — on SQLite
and PostgreSQL, read back both through the stores and directly from the tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.jobs.outbox import OutboxWorker
from connectors.metrics import REGISTRY
from connectors.privacy.reencrypt import reencrypt
from connectors.privacy.rights import (
    erase_customer,
    expire_raw_bodies,
    export_customer,
    purge_older_than,
)
from connectors.storage.checks import StoredDataError
from connectors.storage.encrypted_tracker import EncryptedTrackerStore
from connectors.storage.keys import ENV_VAR, KeyConfigError, KeyRing, UnreadableError, new_key_line
from connectors.storage.messages import OutboundRecord
from connectors.storage.opening import open_store
from connectors.storage.schema import (
    CUSTOMER_TABLES,
    SEALED_COLUMNS,
    inbound_messages,
    outbox,
    refund_requests,
    refund_totals,
    stripe_events,
)
from connectors.storage.sealing import column_context, digest, row_identity
from connectors.storage.store import ConnectorStore
from sandbox.processes import ROOT
from scripts.outbox_cli import main as outbox_cli
from scripts.privacy_cli import main as privacy_main
from shop_contract.env_settings import ConfigError
from shop_contract.fulfilment import Fulfilment
from tests.support import redis_server
from tests.support.at_rest import found_in_sqlite_files, found_in_tables
from tests.support.postgres import temporary_database

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
    # Named, not shown: the values hold keys made at run time, and pytest-xdist's workers
    # must collect the same test ids.
    ids=[
        "unset",
        "blank",
        "3-bytes",
        "hex",
        "no-colon",
        "bad-id",
        "upper-case-id",
        "not-base64",
        "twice",
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
    store.messages.record_inbound(
        f"wamid.{tag}", customer, payload=json.dumps({"text": "hi there"})
    )
    store.messages.touch_customer(customer, time.time())
    store.messages.record_outbound(
        f"wamid.out.{tag}", customer, "notification", "Order is confirmed"
    )
    event = json.dumps({"metadata": {"whatsapp_user_id": customer}})
    store.stripe.record_event(  # an expiry with a recovery URL: its order is kept too
        f"evt_{tag}", "checkout.session.expired", event, customer, recovery=(f"cs_{tag}", "ORD-1")
    )
    store.stripe.claim_fulfilment(f"cs_{tag}", f"evt_{tag}")
    store.outbox.enqueue(f"evt_{tag}:0", customer, '{"type": "text"}')
    handover, _ = store.handovers.open(customer, "complaint")
    store.handovers.end(handover.ref, "staff")  # (one open hand-over per customer at most)
    store.reminders.schedule(customer, f"ORD-{tag}", f"cs_{tag}", time.time() - 1)
    store.paid_orders.record_paid(customer, f"ORD-{tag}", f"cs_{tag}", f"pi_{tag}", "eur", 990)
    paid = store.paid_orders.get(f"ORD-{tag}")
    assert paid is not None
    store.paid_orders.move(paid, Fulfilment.SHIPPED, "DHL", f"https://track.example/{tag}")


def test_nothing_personal_is_stored_in_clear(database_url: str) -> None:
    trackers = tracker_store(database_url, KEY_1)
    converse(trackers, ANNA, "I'd like the pour-over kit", time.time())
    connector_rows(open_store(database_url, KeyRing.parse(KEY_1)), ANNA)
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
    connector_rows(open_store(database_url, KeyRing.parse(KEY_1)), ANNA)

    rotated = f"{KEY_2},{KEY_1}"
    trackers = tracker_store(database_url, rotated)
    loaded = asyncio.run(trackers.retrieve(ANNA))
    assert loaded is not None and loaded.latest_message.text == "first words"
    store = open_store(database_url, KeyRing.parse(rotated))
    assert store.messages.last_inbound_at(ANNA) is not None
    converse(trackers, ANNA, "second words", time.time())  # new writes use k2
    touched_at = time.time() + 5
    store.messages.touch_customer(ANNA, touched_at)  # a k2 row next to the k1 row

    counts = reencrypt(open_store(database_url, KeyRing.parse(rotated), verify=False))
    assert counts["events"] == 3 and counts["wa_customers"] == 1
    old_key = {"k1 events": "e.k1.", "k1 columns": "r.k1.", "k1 pseudonyms": "h.k1."}
    assert found_in_tables(database_url, old_key) == []
    assert reencrypt(open_store(database_url, KeyRing.parse(rotated)))["events"] == 0

    only_new = tracker_store(database_url, KEY_2)  # k1 dropped from the ring: all still there
    full = asyncio.run(only_new.retrieve_full_tracker(ANNA))
    assert full is not None
    assert [e.text for e in full.events if isinstance(e, UserUttered)] == [
        "first words",
        "second words",
    ]
    again = open_store(database_url, KeyRing.parse(KEY_2))
    assert again.messages.last_inbound_at(ANNA) == pytest.approx(touched_at)
    assert [e.customer_id for e in again.outbox.entries()] == [ANNA]


def test_start_up_refuses_a_wrong_or_removed_key(database_url: str) -> None:
    converse(tracker_store(database_url, KEY_1), ANNA, "hello", time.time())
    open_store(database_url, KeyRing.parse(KEY_1)).messages.touch_customer(ANNA, time.time())

    impostor = new_key_line("k1")  # another key under the same id
    with pytest.raises(StoredDataError, match="key 'k1' does not open the conversations"):
        tracker_store(database_url, impostor)
    with pytest.raises(StoredDataError, match="key 'k1' does not open the table wa_customers"):
        open_store(database_url, KeyRing.parse(impostor))
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
    assert reencrypt(open_store(url, KeyRing.parse(KEY_1), verify=False))["events"] == 1
    loaded = asyncio.run(tracker_store(url, KEY_1).retrieve(ANNA))
    assert loaded is not None and loaded.latest_message.text == "old text"
    assert found_in_tables(url, {"number": ANNA, "text": "old text"}) == []
    # Not even in free pages or the write-ahead log of the file.
    assert found_in_sqlite_files(tmp_path / "old.db", {"number": ANNA, "text": "old text"}) == []


# --- the customer's rights -------------------------------------------------------------------


def two_customers(url: str) -> tuple[EncryptedTrackerStore, ConnectorStore]:
    """Stores holding a conversation and connector rows for Anna and for Boris."""
    trackers = tracker_store(url, KEY_1)
    store = open_store(url, KeyRing.parse(KEY_1))
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
    (handover,) = exported["handovers"]
    assert handover["reason"] == "complaint" and handover["ref"].startswith("H-")
    (reminder,) = exported["checkout_reminders"]
    assert (reminder["order_id"], reminder["checkout_session_id"]) == ("ORD-anna", "cs_anna")
    (paid,) = exported["paid_orders"]
    assert (paid["order_id"], paid["payment_intent"], paid["amount"]) == (
        "ORD-anna",
        "pi_anna",
        990,
    )


def test_erase_removes_everything_of_one_customer_only(database_url: str) -> None:
    trackers, store = two_customers(database_url)

    counts = erase_customer(store, ANNA)
    assert counts["events"] == 3 and counts["stripe_fulfilments"] == 1
    assert asyncio.run(trackers.retrieve(ANNA)) is None
    assert store.messages.last_inbound_at(ANNA) is None
    emptied = export_customer(store, ANNA)
    assert all(emptied[name] == [] for name in emptied if name not in ("customer", "exported_at"))
    assert store.messages.record_inbound("wamid.anna", ANNA)  # no trace left, not even for dedup
    assert len(export_customer(store, BORIS)["conversation_events"]) == 3
    assert store.stripe.claim_fulfilment("cs_boris", "evt_other") is False


def refunds_of(store: ConnectorStore, tag: str) -> tuple[int, int]:
    """(refund requests, kept refund totals) of the order tagged `tag`."""
    with store.engine.connect() as connection:
        requests = connection.execute(
            sa.select(sa.func.count()).where(refund_requests.c.order_id == f"ORD-{tag}")
        ).scalar_one()
        totals = connection.execute(
            sa.select(sa.func.count()).where(refund_totals.c.payment_intent == f"pi_{tag}")
        ).scalar_one()
    return int(requests), int(totals)


def test_erase_and_purge_take_the_refunds_of_a_customers_orders(database_url: str) -> None:
    """Refund requests and totals name no customer, only their order and payment: erase finds
    them through the customer's paid orders, and purge goes by their age."""
    _, store = two_customers(database_url)
    for tag in ("anna", "boris"):
        store.refund_requests.record(f"ORD-{tag}", f"key-{tag}", 100, since=0.0)
        store.paid_orders.note_refund_total(f"pi_{tag}", 100)
    counts = erase_customer(store, ANNA)
    assert (counts["refund_requests"], counts["refund_totals"]) == (1, 1)
    assert refunds_of(store, "anna") == (0, 0)
    assert refunds_of(store, "boris") == (1, 1)
    long_ago = time.time() - 100 * 86400
    with store.engine.begin() as connection:
        connection.execute(refund_requests.update().values(created_at=long_ago))
        connection.execute(refund_totals.update().values(updated_at=long_ago))
    counts = purge_older_than(store, 90 * 86400)
    assert (counts["refund_requests"], counts["refund_totals"]) == (1, 1)
    assert refunds_of(store, "boris") == (0, 0)


def test_purge_removes_only_old_data(database_url: str) -> None:
    trackers = tracker_store(database_url, KEY_1)
    store = open_store(database_url, KeyRing.parse(KEY_1))
    old = time.time() - 100 * 86400
    converse(trackers, ANNA, "long ago", old)
    converse(trackers, BORIS, "just now", time.time())
    connector_rows(store, BORIS)
    store.messages.record_inbound("wamid.old", ANNA, now=old)

    counts = purge_older_than(store, 90 * 86400)
    assert counts["events"] == 3 and counts["wa_inbound_messages"] == 1
    assert asyncio.run(trackers.retrieve(ANNA)) is None
    assert asyncio.run(trackers.retrieve(BORIS)) is not None
    assert store.messages.record_inbound("wamid.old", ANNA) is True
    assert store.messages.record_inbound("wamid.boris", BORIS) is False
    assert sum(purge_older_than(store, 90 * 86400).values()) == 0


def test_purge_waits_for_reencryption_after_a_rotation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    converse(tracker_store(url, KEY_1), ANNA, "long ago", time.time() - 100 * 86400)
    rotated = open_store(url, KeyRing.parse(f"{KEY_2},{KEY_1}"))
    with pytest.raises(StoredDataError, match="reencrypt"):
        purge_older_than(rotated, 90 * 86400)
    reencrypt(rotated)
    assert purge_older_than(rotated, 90 * 86400)["events"] == 3


def test_raw_bodies_are_dropped_after_the_retention_period(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}", KeyRing.parse(KEY_1))
    store.messages.record_inbound("wamid.old", ANNA, now=time.time() - 40 * 86400, payload="{}")
    store.messages.record_inbound("wamid.new", ANNA, payload="{}")
    store.stripe.record_event("evt_new", "checkout.session.completed", "{}", ANNA)

    assert expire_raw_bodies(store, 30 * 86400)["wa_inbound_messages"] == 1
    with store.engine.connect() as connection:
        kept = dict(
            connection.execute(
                sa.select(inbound_messages.c.message_id, inbound_messages.c.payload)
            ).all()
        )
        assert connection.execute(sa.select(stripe_events.c.payload)).scalar() is not None
    assert kept[digest("wamid.old")] is None and kept[digest("wamid.new")] is not None
    assert store.messages.record_inbound("wamid.old", ANNA) is False  # still counted for dedup


# --- sealed values bound to their row --------------------------------------------------------

# Each table's natural key: its sealed values name it, so they open in no other row.
KEY_COLUMNS = {
    "wa_inbound_messages": "message_id",
    "wa_outbound_messages": "message_id",
    "wa_customers": "customer_pseudonym",
    "stripe_events": "event_id",
    "notification_outbox": "dedup_key",
    "handovers": "ref",
    "checkout_reminders": "reminder_id",
    "paid_orders": "order_id",
}
SEALED = [(table, column) for table, columns in SEALED_COLUMNS.items() for column in columns]


def row_ids(table: str, store: ConnectorStore | None = None) -> tuple[str, str]:
    """The natural keys of Anna's and Boris's rows of `table`, as connector_rows made them
    (the hand-overs' random references read back from `store`)."""
    keys = KeyRing.parse(KEY_1)
    if table == "handovers":
        assert store is not None
        anna, boris = (store.handovers.current(customer) for customer in (ANNA, BORIS))
        assert anna is not None and boris is not None
        return anna.ref, boris.ref
    if table == "checkout_reminders":
        assert store is not None
        due = {reminder.customer_id: reminder.reminder_id for reminder in store.reminders.due(60)}
        return due[ANNA], due[BORIS]
    return {
        "wa_inbound_messages": (digest("wamid.anna"), digest("wamid.boris")),
        "wa_outbound_messages": (digest("wamid.out.anna"), digest("wamid.out.boris")),
        "wa_customers": (keys.pseudonym(ANNA), keys.pseudonym(BORIS)),
        "stripe_events": ("evt_anna", "evt_boris"),
        "notification_outbox": ("evt_anna:0", "evt_boris:0"),
        "paid_orders": ("ORD-anna", "ORD-boris"),
    }[table]


def swap(url: str, table: str, column: str, first: str, second: str) -> None:
    """Exchanges the stored `column` of two rows, as anyone who can write the database can."""
    key = KEY_COLUMNS[table]
    engine = sa.create_engine(url, future=True)
    try:
        with engine.begin() as connection:
            read = sa.text(f"select {column} from {table} where {key} = :id")  # noqa: S608
            values = [connection.execute(read, {"id": row}).scalar_one() for row in (first, second)]
            write = sa.text(f"update {table} set {column} = :value where {key} = :id")  # noqa: S608
            connection.execute(write, {"value": values[1], "id": first})
            connection.execute(write, {"value": values[0], "id": second})
    finally:
        engine.dispose()


@pytest.mark.parametrize(("table", "column"), SEALED)
def test_a_sealed_value_moved_to_another_row_does_not_open(
    database_url: str, table: str, column: str
) -> None:
    _, store = two_customers(database_url)
    swap(database_url, table, column, *row_ids(table, store))

    if column == "customer_sealed":  # read at start-up (export leaves the sealed id out)
        with pytest.raises(StoredDataError, match=f"open the table {table} .*moved between rows"):
            open_store(database_url, KeyRing.parse(KEY_1))
    else:
        for customer in (ANNA, BORIS):
            with pytest.raises(UnreadableError, match=rf"{table}\.{column}: .*another row"):
                export_customer(store, customer)


@pytest.mark.parametrize("table", [t for t in SEALED_COLUMNS if t != "wa_customers"])
def test_a_row_refiled_under_another_customer_does_not_open(database_url: str, table: str) -> None:
    """Changing a row's customer_pseudonym (wa_customers: its natural key, covered above) would
    put it in another customer's export: its sealed values name the pseudonym too."""
    _, store = two_customers(database_url)
    anna_row, _ = row_ids(table, store)
    engine = sa.create_engine(database_url, future=True)
    try:
        with engine.begin() as connection:
            key = KEY_COLUMNS[table]
            refile = f"update {table} set customer_pseudonym = :key where {key} = :id"  # noqa: S608
            connection.execute(
                sa.text(refile),
                {"key": store.keys.pseudonym(BORIS), "id": anna_row},
            )
    finally:
        engine.dispose()

    with pytest.raises(UnreadableError, match=rf"{table}\.\w+: .*another row"):
        export_customer(store, BORIS)


def test_a_notification_whose_recipient_was_moved_is_never_sent(database_url: str) -> None:
    store = open_store(database_url, KeyRing.parse(KEY_1))
    carl = "15550903333"
    for customer, key in ((ANNA, "evt_anna:0"), (BORIS, "evt_boris:0"), (carl, "evt_carl:0")):
        store.outbox.enqueue(key, customer, json.dumps({"for": customer}))
    swap(database_url, "notification_outbox", "customer_sealed", "evt_anna:0", "evt_boris:0")
    delivered: list[tuple[str, dict[str, str]]] = []

    async def deliver(customer: str, body: dict[str, str]) -> str | None:
        delivered.append((customer, body))
        return f"wamid.to.{customer}"

    worker = OutboxWorker(store, deliver, base_delay=0.01, poll_seconds=0.01)
    assert asyncio.run(worker.run_once()) == 1  # the round goes on past the altered rows
    assert delivered == [(carl, {"for": carl})]
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(outbox.c.dedup_key, outbox.c.status, outbox.c.last_error).order_by(
                outbox.c.id
            )
        ).all()
    assert [(key, status) for key, status, _ in rows] == [
        ("evt_anna:0", "dead"),
        ("evt_boris:0", "dead"),
        ("evt_carl:0", "sent"),
    ]
    assert all("unreadable: notification_outbox.customer_sealed" in str(e) for *_, e in rows[:2])


def test_a_payload_moved_from_another_row_is_set_aside_once_not_replayed(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(database_url, KeyRing.parse(KEY_1))
    for name, customer in (("anna", ANNA), ("boris", BORIS), ("carl", "15550903333")):
        payload = json.dumps({"text": f"from {name}"})
        store.messages.record_inbound(
            f"wamid.{name}", customer, time.time() - 60, payload
        )  # abandoned
    swap(database_url, "wa_inbound_messages", "payload", *row_ids("wa_inbound_messages"))
    counted = REGISTRY.get_sample_value(
        "shop_unreadable_rows_total", {"table": "wa_inbound_messages"}
    )

    with caplog.at_level(logging.ERROR, logger="connectors.storage.leases"):
        taken = store.leases.claim_abandoned(inbound_messages, "message_id", 30)
        store.leases.claim_abandoned(inbound_messages, "message_id", 0)  # later sweeps
        store.leases.claim_abandoned(inbound_messages, "message_id", 0)
    assert [(row_id, payload) for row_id, payload, _claim in taken] == [
        (digest("wamid.carl"), json.dumps({"text": "from carl"}))
    ]
    assert caplog.text.count("wa_inbound_messages.payload") == 2  # logged once per row
    assert (
        REGISTRY.get_sample_value("shop_unreadable_rows_total", {"table": "wa_inbound_messages"})
        == (counted or 0) + 2
    )
    with store.engine.connect() as connection:
        outcomes = connection.execute(
            sa.select(inbound_messages.c.message_id, inbound_messages.c.outcome)
            .where(inbound_messages.c.processed_at.is_not(None))
            .order_by(inbound_messages.c.message_id)
        ).all()
    assert sorted(outcomes) == sorted((row, "unreadable") for row in row_ids("wa_inbound_messages"))


def test_the_outbox_listing_shows_a_row_that_does_not_open_as_unreadable(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(database_url, KeyRing.parse(KEY_1))
    for customer, key in ((ANNA, "evt_anna:0"), (BORIS, "evt_boris:0")):
        store.outbox.enqueue(key, customer, json.dumps({"for": customer}))
    swap(database_url, "notification_outbox", "body", "evt_anna:0", "evt_boris:0")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv(ENV_VAR, KEY_1)

    assert outbox_cli(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("pending" in x and "customer=unreadable" in x for x in lines)


def test_the_fallback_for_a_failed_notification_finds_no_moved_recipient(
    database_url: str,
) -> None:
    store = open_store(database_url, KeyRing.parse(KEY_1))
    store.messages.record_outbound("wamid.out.anna", ANNA, "notification", "Anna's order is paid")
    store.messages.record_outbound(
        "wamid.out.boris", BORIS, "notification", "Boris's order is paid"
    )
    swap(database_url, "wa_outbound_messages", "customer_sealed", *row_ids("wa_outbound_messages"))

    with pytest.raises(UnreadableError, match=r"wa_outbound_messages\.customer_sealed"):
        store.messages.record_status(
            "wamid.out.anna", "failed", time.time(), 131047, "Re-engagement"
        )
    with pytest.raises(UnreadableError, match=r"wa_outbound_messages\.customer_sealed"):
        store.messages.outbound("wamid.out.boris")


def to_old_form(url: str) -> None:
    """Rewrites the connector's sealed values the way they were sealed before they were bound
    to their row: `e.<key id>.…` with only "table.column" as associated data."""
    keys = KeyRing.parse(KEY_1)
    store = open_store(url, keys, verify=False)
    with store.engine.begin() as connection:
        for name, table in CUSTOMER_TABLES.items():
            key = table.c[KEY_COLUMNS[name]]
            for row in connection.execute(sa.select(table)).all():
                old = {
                    column: keys.seal(
                        str(
                            store.sealer.open(
                                table,
                                column,
                                row_identity(table, row._mapping),
                                row._mapping[column],
                            )
                        ),
                        column_context(name, column),
                    )
                    for column in SEALED_COLUMNS[name]
                    if row._mapping[column] is not None
                }
                connection.execute(table.update().where(key == row._mapping[key.name]).values(old))
    store.engine.dispose()


def old_form_values(url: str) -> int:
    """How many of the connector's sealed values are still in the old form."""
    engine = sa.create_engine(url, future=True)
    with engine.connect() as connection:
        found = sum(
            int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c[column].like("e.%"))
                ).scalar_one()
            )
            for name, table in CUSTOMER_TABLES.items()
            for column in SEALED_COLUMNS[name]
        )
    engine.dispose()
    return found


def test_rows_of_the_old_form_stop_start_up_until_reencrypt_binds_them(database_url: str) -> None:
    _, store = two_customers(database_url)
    before = {customer: export_customer(store, customer) for customer in (ANNA, BORIS)}
    to_old_form(database_url)
    assert old_form_values(database_url) == 28  # every sealed value: 14 per customer

    with pytest.raises(StoredDataError, match=r"old form.*make privacy ARGS=reencrypt"):
        open_store(database_url, KeyRing.parse(KEY_1))
    unchecked = open_store(database_url, KeyRing.parse(KEY_1), verify=False)
    with pytest.raises(UnreadableError, match="old form that does not name its row"):
        unchecked.messages.outbound("wamid.out.anna")  # the bot itself never opens the old form

    counts = reencrypt(unchecked)
    assert {name: counts[name] for name in CUSTOMER_TABLES} == dict.fromkeys(CUSTOMER_TABLES, 2)
    assert old_form_values(database_url) == 0
    again = reencrypt(open_store(database_url, KeyRing.parse(KEY_1)))
    assert {name: again[name] for name in CUSTOMER_TABLES} == dict.fromkeys(CUSTOMER_TABLES, 0)

    store = open_store(database_url, KeyRing.parse(KEY_1))
    for customer in (ANNA, BORIS):
        exported = export_customer(store, customer)
        assert {**exported, "exported_at": ""} == {**before[customer], "exported_at": ""}
    assert store.messages.outbound("wamid.out.anna") == OutboundRecord(
        "wamid.out.anna", ANNA, "notification", "Order is confirmed", "accepted"
    )
    assert erase_customer(store, ANNA)["notification_outbox"] == 1
    assert export_customer(store, BORIS)["notification_outbox"][0]["body"] == {"type": "text"}


def test_reencrypt_refuses_an_old_form_id_moved_to_another_customers_row(
    database_url: str,
) -> None:
    two_customers(database_url)
    to_old_form(database_url)  # the old form opens in any row: only the pseudonym tells
    swap(database_url, "notification_outbox", "customer_sealed", "evt_anna:0", "evt_boris:0")

    unchecked = open_store(database_url, KeyRing.parse(KEY_1), verify=False)
    with pytest.raises(
        UnreadableError, match="names another customer than the row's customer_pseudonym"
    ):
        reencrypt(unchecked)


# --- the command line ------------------------------------------------------------------------


class CliRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def privacy_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., CliRun]:
    """`make privacy ARGS=…` in-process (its `main(argv)`), with DATABASE_URL and the key
    ring as given and no project `.env`; what it printed and its exit status."""
    monkeypatch.chdir(tmp_path)  # the env file is the working directory's .env: none here
    monkeypatch.delenv("ENV_FILE", raising=False)

    def run(*args: str, url: str, keys: str) -> CliRun:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv(ENV_VAR, keys)
        try:
            status = privacy_main(list(args))
        except SystemExit as exit:
            status = int(exit.code or 0)
        printed = capsys.readouterr()
        return CliRun(status, printed.out, printed.err)

    return run


def test_cli_exports_erases_and_explains_a_missing_key(
    tmp_path: Path, privacy_cli: Callable[..., CliRun]
) -> None:
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
    # birth date; payment details go to Stripe, never through the Flow. `then` is the cart's
    # "update / check out" choice and `country` prices the delivery (data/shop.yml): neither
    # says more about the customer than the address does.
    assert flow_fields(flow) == {
        "product",
        "quantity",
        "then",
        "name",
        "street",
        "postal_code",
        "city",
        "country",
    }


# --- the Redis lock store ---------------------------------------------------------------------


def test_redis_locks_name_the_pseudonym_not_the_number() -> None:
    import redis
    from rasa.utils.endpoints import EndpointConfig

    from connectors.storage.lock_store import PseudonymousRedisLockStore

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


def test_a_lock_lifetime_in_endpoints_yml_is_how_long_a_ticket_lasts() -> None:
    import redis
    from rasa.utils.endpoints import EndpointConfig

    from connectors.storage.lock_store import PseudonymousRedisLockStore

    reason = redis_server.unreachable_reason()
    if reason:
        pytest.skip(reason)
    client = redis.Redis(host=redis_server.HOST, port=redis_server.PORT, socket_timeout=2)
    prefix = f"lifetime{os.getpid()}"
    config = EndpointConfig(url="127.0.0.1", port=6379, db=0, key_prefix=prefix, lock_lifetime=5)
    store = PseudonymousRedisLockStore(config)

    async def expiry_while_held() -> float:
        async with store.lock(ANNA):
            held = store.get_lock(store.keys.pseudonym(ANNA))
            assert held is not None and len(held.tickets) == 1
            return float(held.tickets[0].expires)

    taken = time.time()
    assert taken + 5 <= asyncio.run(expiry_while_held()) <= time.time() + 5
    assert client.keys(f"{prefix}:*") == []  # released


@pytest.mark.parametrize("lifetime", [0, -1, "soon", True, float("nan"), float("inf"), [5]])
def test_a_lock_lifetime_that_is_not_a_positive_number_stops_start_up(lifetime: object) -> None:
    from rasa.utils.endpoints import EndpointConfig

    from connectors.storage.lock_store import PseudonymousRedisLockStore

    with pytest.raises(ConfigError, match="lock_lifetime must be a number of seconds above 0"):
        PseudonymousRedisLockStore(EndpointConfig(url="127.0.0.1", lock_lifetime=lifetime))


def test_a_lock_lifetime_given_as_text_is_read_as_seconds() -> None:
    from rasa.utils.endpoints import EndpointConfig

    from connectors.storage.lock_store import PseudonymousRedisLockStore

    store = PseudonymousRedisLockStore(EndpointConfig(url="127.0.0.1", lock_lifetime="7.5"))
    assert store.lock_lifetime == 7.5  # what endpoints.yml's ${TICKET_LOCK_SECONDS} gives
