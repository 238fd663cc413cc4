"""The hand-over table: one open hand-over per customer, conditional moves from open to
ended to handed back, the timeout's query and the hand-back's lease (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import threading
import time

import sqlalchemy as sa

from connectors.storage.handovers import ENDED, OPEN
from connectors.storage.schema import handovers
from tests.storage.conftest import Backend


def age(backend: Backend, ref: str, seconds: float) -> None:
    """Moves a hand-over's opening `seconds` into the past, as time passing would."""
    store = backend.store()
    with store.engine.begin() as connection:
        connection.execute(
            handovers.update()
            .where(handovers.c.ref == ref)
            .values(opened_at=handovers.c.opened_at - seconds)
        )


def test_a_customer_has_one_open_hand_over_under_a_reference_that_names_nobody(
    backend: Backend,
) -> None:
    store = backend.store()
    customer, other = backend.customer_id("anna"), backend.customer_id("boris")
    first, fresh = store.handovers.open(customer, "complaint")
    again, fresh_again = store.handovers.open(customer, "asked")
    assert fresh and not fresh_again and again == first
    assert re.fullmatch(r"H-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", first.ref)
    assert (first.customer_id, first.reason, first.status) == (customer, "complaint", OPEN)
    theirs, _ = store.handovers.open(other, "asked")
    assert theirs.ref != first.ref
    assert [h.ref for h in backend.store().handovers.listing()] == [first.ref, theirs.ref]
    with store.engine.connect() as connection:
        stored = " ".join(str(v) for row in connection.execute(sa.select(handovers)) for v in row)
    assert customer not in stored and other not in stored


def test_two_replicas_opening_at_once_open_one(backend: Backend) -> None:
    customer = backend.customer_id("race")
    stores = [backend.store() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    opened = []

    def open_one(index: int) -> None:
        barrier.wait()
        opened.append(stores[index].handovers.open(customer, "asked"))

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({handover.ref for handover, _ in opened}) == 1
    assert sum(fresh for _, fresh in opened) == 1


def test_ending_and_handing_back_happen_once(backend: Backend) -> None:
    store = backend.store()
    customer = backend.customer_id("anna")
    handover, _ = store.handovers.open(customer, "asked")
    assert store.handovers.staff_replied(handover.ref)
    assert store.handovers.end(handover.ref, "staff") is True
    assert store.handovers.end(handover.ref, "timeout") is False  # ended once, by staff
    assert store.handovers.staff_replied(handover.ref) is False  # no reply after the end
    ended = store.handovers.find(handover.ref)
    assert ended is not None and (ended.status, ended.ended_by) == (ENDED, "staff")
    assert store.handovers.current(customer) == ended  # not yet handed back to the bot
    assert store.handovers.listing() == []

    assert [h.ref for h in store.handovers.to_hand_back(60)] == [handover.ref]
    assert store.handovers.claim_hand_back(handover.ref, 60) is True
    assert backend.store().handovers.claim_hand_back(handover.ref, 60) is False  # held
    assert store.handovers.to_hand_back(60) == []
    assert store.handovers.handed_back(handover.ref) is True
    assert store.handovers.current(customer) is None
    assert store.handovers.claim_hand_back(handover.ref, 0) is False  # done, whatever the lease
    assert store.handovers.find("H-UNKNOWN1") is None


def test_an_abandoned_hand_back_is_claimed_again_after_its_lease(backend: Backend) -> None:
    store = backend.store()
    handover, _ = store.handovers.open(backend.customer_id("crash"), "asked")
    store.handovers.end(handover.ref, "staff")
    assert store.handovers.claim_hand_back(handover.ref, 60) is True  # then the process died
    time.sleep(0.05)
    assert [h.ref for h in store.handovers.to_hand_back(0.01)] == [handover.ref]
    assert backend.store().handovers.claim_hand_back(handover.ref, 0.01) is True


def test_the_timeout_counts_from_the_last_staff_reply(backend: Backend) -> None:
    store = backend.store()
    quiet, _ = store.handovers.open(backend.customer_id("quiet"), "asked")
    answered, _ = store.handovers.open(backend.customer_id("answered"), "asked")
    age(backend, quiet.ref, 3600)
    age(backend, answered.ref, 3600)
    store.handovers.staff_replied(answered.ref)
    assert store.handovers.timed_out(1800) == [quiet.ref]
    reopened = store.handovers.find(quiet.ref)
    assert reopened is not None and time.time() - reopened.quiet_since >= 3600


def test_a_new_hand_over_overtakes_one_not_yet_handed_back(backend: Backend) -> None:
    """The bot took the turn that handed over again, so the earlier hand-over's conversation
    is back with it: its hand-back must not run after the new one has paused the bot."""
    store = backend.store()
    customer = backend.customer_id("again")
    first, _ = store.handovers.open(customer, "asked")
    store.handovers.end(first.ref, "timeout")
    second, fresh = store.handovers.open(customer, "complaint")
    assert fresh and second.ref != first.ref
    assert store.handovers.current(customer) == second
    assert store.handovers.to_hand_back(60) == []
