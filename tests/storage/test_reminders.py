"""The checkout reminders table: one per customer and order, moved by a newer link, claimed
under a lease by one process, done once its turn ran (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from connectors.privacy.rights import expire_raw_bodies
from connectors.storage.reminders import reminder_of
from connectors.storage.schema import checkout_reminders
from tests.storage.conftest import Backend

LEASE = 60.0


def test_one_reminder_per_customer_and_order_moved_by_a_newer_link(backend: Backend) -> None:
    store = backend.store()
    anna, boris = backend.customer_id("anna"), backend.customer_id("boris")
    now = time.time()
    store.reminders.schedule(anna, "ORD-1", "cs_first", now - 10)
    store.reminders.schedule(anna, "ORD-1", "cs_first", now - 10)  # a replayed turn
    store.reminders.schedule(boris, "ORD-1", "cs_boris", now - 5)
    store.reminders.schedule(anna, "ORD-2", "cs_later", now + 600)  # not due yet

    due = backend.store().reminders.due(LEASE)
    assert [(r.customer_id, r.order_id, r.checkout_session_id) for r in due] == [
        (anna, "ORD-1", "cs_first"),
        (boris, "ORD-1", "cs_boris"),
    ]
    store.reminders.schedule(anna, "ORD-1", "cs_second", now + 300)  # a new link of ORD-1
    assert [r.customer_id for r in store.reminders.due(LEASE)] == [boris]
    assert [r.checkout_session_id for r in store.reminders.due(LEASE, now + 301)] == [
        "cs_boris",
        "cs_second",
    ]
    with store.engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(checkout_reminders))
        assert count.scalar_one() == 3
        stored = connection.execute(sa.select(checkout_reminders.c.customer_sealed)).scalars()
        assert all(anna not in value and boris not in value for value in stored)


def test_a_due_reminder_is_claimed_once_and_done_once(backend: Backend) -> None:
    first, second = backend.store(), backend.store()  # two replicas
    anna = backend.customer_id("anna")
    first.reminders.schedule(anna, "ORD-1", "cs_first", time.time() - 1)
    (reminder,) = first.reminders.due(LEASE)

    assert first.reminders.claim(reminder.reminder_id, LEASE)
    assert not second.reminders.claim(reminder.reminder_id, LEASE)
    assert second.reminders.due(LEASE) == []  # held by the first
    later = time.time() + LEASE + 1
    assert [r.reminder_id for r in second.reminders.due(LEASE, later)] == [reminder.reminder_id]
    assert first.reminders.done(reminder)
    assert second.reminders.due(LEASE, later) == []
    assert not second.reminders.claim(reminder.reminder_id, LEASE, later)


def test_a_newer_link_during_the_turn_keeps_its_reminder_due(backend: Backend) -> None:
    store = backend.store()
    anna = backend.customer_id("anna")
    now = time.time()
    store.reminders.schedule(anna, "ORD-1", "cs_first", now - 1)
    (reminder,) = store.reminders.due(LEASE)
    assert store.reminders.claim(reminder.reminder_id, LEASE)
    store.reminders.schedule(anna, "ORD-1", "cs_second", now + 300)

    assert not store.reminders.done(reminder)  # that turn was about the older link
    (moved,) = store.reminders.due(LEASE, now + 301)
    assert (moved.reminder_id, moved.checkout_session_id) == (reminder.reminder_id, "cs_second")


def test_a_reminder_request_is_read_only_when_well_formed() -> None:
    good = {"order_id": "ORD-1", "session_id": "cs_1", "remind_at": 1_700_000_000}
    assert reminder_of(good) == ("ORD-1", "cs_1", 1_700_000_000.0)
    for bad in (
        None,
        "ORD-1",
        {**good, "order_id": ""},
        {**good, "session_id": 7},
        {**good, "remind_at": "soon"},
        {**good, "remind_at": True},
    ):
        assert reminder_of(bad) is None, bad


def test_retention_drops_reminders_whose_turn_ran_long_ago_only(backend: Backend) -> None:
    store = backend.store()
    month = 30 * 86400
    for name in ("old_done", "new_done", "old_waiting"):
        store.reminders.schedule(backend.customer_id(name), "ORD-1", f"cs_{name}", time.time())
    for reminder in store.reminders.due(LEASE):
        store.reminders.claim(reminder.reminder_id, LEASE)
        if not reminder.checkout_session_id.endswith("waiting"):
            store.reminders.done(reminder)
    with store.engine.begin() as connection:
        connection.execute(
            checkout_reminders.update()
            .where(checkout_reminders.c.checkout_session_id.in_(["cs_old_done", "cs_old_waiting"]))
            .values(done_at=checkout_reminders.c.done_at - month - 1, created_at=0.0)
        )

    assert expire_raw_bodies(store, month)["checkout_reminders"] == 1
    with store.engine.connect() as connection:
        left = connection.execute(sa.select(checkout_reminders.c.checkout_session_id)).scalars()
        assert sorted(left) == ["cs_new_done", "cs_old_waiting"]
