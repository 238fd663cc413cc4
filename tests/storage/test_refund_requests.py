"""Refund requests: one per order and key, and at most one of an order whose outcome is
unknown, however many are recorded at once (SQLite and PostgreSQL). The desk's use of them:
tests/test_orders_refund_keys.py; through the real servers: tests/test_orders_live.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from connectors.storage.refund_requests import RefundPending, RefundRequest
from connectors.storage.schema import refund_requests
from tests.storage.conftest import Backend

DAY = 24 * 3600


def record_at_once(backend: Backend, order_id: str, keys: list[str]) -> list[object]:
    """Each key recorded by its own thread and store (as by replicas), released together:
    what each got, a RefundRequest or RefundPending."""
    stores = [backend.store() for _ in keys]
    start = threading.Barrier(len(keys))

    def record(n: int) -> object:
        start.wait()
        try:
            return stores[n].refund_requests.record(order_id, keys[n], 100, time.time() - DAY)
        except RefundPending as pending:
            return pending

    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(record, range(len(keys))))


def test_of_requests_made_at_once_one_is_recorded(backend: Backend) -> None:
    order_id = f"ORD-{backend.tag}"
    keys = [f"key-{n}" for n in range(6)]
    outcomes = record_at_once(backend, order_id, keys)
    (recorded,) = [o for o in outcomes if isinstance(o, RefundRequest)]
    blocked = [o for o in outcomes if isinstance(o, RefundPending)]
    assert len(blocked) == len(keys) - 1
    assert {b.key for b in blocked} <= {recorded.request_key, None}  # None: settled meanwhile
    requests = backend.store().refund_requests
    assert requests.unknown_outcome(order_id) == recorded.request_key
    assert [requests.get(order_id, key) is not None for key in keys].count(True) == 1


def test_a_retry_under_its_own_key_is_not_blocked_by_itself(backend: Backend) -> None:
    requests = backend.store().refund_requests
    order_id = f"ORD-{backend.tag}"
    first = requests.record(order_id, "op-1", 400, time.time() - DAY)
    assert requests.record(order_id, "op-1", 900, time.time() - DAY) == first  # amount kept
    with pytest.raises(RefundPending) as blocked:
        requests.record(order_id, "op-2", 100, time.time() - DAY)
    assert blocked.value.key == "op-1"
    assert requests.record(f"ORD-other-{backend.tag}", "op-2", 100, time.time() - DAY)


@pytest.mark.parametrize("settled", ["done", "refused"])
def test_an_answered_request_no_longer_blocks(backend: Backend, settled: str) -> None:
    requests = backend.store().refund_requests
    order_id = f"ORD-{backend.tag}"
    requests.record(order_id, "op-1", 400, time.time() - DAY)
    if settled == "done":
        requests.done(order_id, "op-1", "re_1")
    else:
        requests.refused(order_id, "op-1")
    assert requests.unknown_outcome(order_id) is None
    assert requests.record(order_id, "op-2", 100, time.time() - DAY).amount == 100
    assert requests.unknown_outcome(order_id) == "op-2"


def test_an_unknown_outcome_older_than_the_window_no_longer_blocks(backend: Backend) -> None:
    requests = backend.store().refund_requests
    order_id = f"ORD-{backend.tag}"
    requests.record(order_id, "op-1", 400, time.time() - DAY)
    with pytest.raises(RefundPending):
        requests.record(order_id, "op-2", 100, time.time() - DAY)
    later = time.time() + 1  # as if the window had passed since op-1
    assert requests.record(order_id, "op-2", 100, later).amount == 100
    assert requests.unknown_outcome(order_id) == "op-2"
    assert requests.get(order_id, "op-1") is not None  # kept: a retry under it is answered


def test_a_retry_is_the_one_unknown_outcome_again_from_its_new_attempt(
    backend: Backend,
) -> None:
    requests = backend.store().refund_requests
    order_id = f"ORD-{backend.tag}"
    requests.record(order_id, "op-1", 400, time.time() - DAY)
    requests.refused(order_id, "op-1")
    requests.record(order_id, "op-2", 100, time.time() - DAY)  # unknown outcome
    with pytest.raises(RefundPending) as blocked:
        requests.claim(order_id, "op-1", time.time() - DAY)  # op-1 retried meanwhile
    assert blocked.value.key == "op-2"
    requests.done(order_id, "op-2", "re_2")
    requests.claim(order_id, "op-1", time.time() - DAY)
    with pytest.raises(RefundPending) as blocked:  # op-1 is in flight again
        requests.record(order_id, "op-3", 100, time.time() - DAY)
    assert blocked.value.key == "op-1"


def test_a_retry_a_day_later_blocks_other_keys_for_a_day_again(backend: Backend) -> None:
    requests = backend.store().refund_requests
    order_id = f"ORD-{backend.tag}"
    requests.record(order_id, "op-1", 400, time.time() - DAY)
    day_later = time.time() + 1  # everything before now is over a day old
    requests.claim(order_id, "op-1", day_later)  # the operator repeats it, as told
    with pytest.raises(RefundPending) as blocked:  # judged from the retry, not the first try
        requests.record(order_id, "op-2", 100, time.time() - DAY)
    assert blocked.value.key == "op-1"


def test_a_database_from_before_pending_refunds_is_upgraded_in_place(backend: Backend) -> None:
    """Rows of version 14: the newest unknown request of each order blocks (the check
    before ignored those over a day old, so one made since may still be in flight);
    answered and refused ones do not."""
    store = backend.store()
    order_a, order_b = f"ORD-a-{backend.tag}", f"ORD-b-{backend.tag}"
    now = time.time()
    rows = [
        (order_a, "a-done", "re_1", False, now - 3 * DAY),
        (order_a, "a-old", None, False, now - 2 * DAY),  # aged out of the old check
        (order_a, "a-new", None, False, now - 3600),  # made since: in flight
        (order_b, "b-refused", None, True, now - 3600),
        (order_b, "b-open", None, False, now - 60),
    ]
    with store.engine.begin() as connection:  # back to the schema of version 14
        connection.exec_driver_sql("DROP INDEX ix_refund_requests_pending_order_id")
        connection.exec_driver_sql("ALTER TABLE refund_requests DROP COLUMN pending_order_id")
        connection.exec_driver_sql("ALTER TABLE refund_requests DROP COLUMN attempted_at")
        connection.exec_driver_sql("DELETE FROM connector_schema_versions WHERE version >= 15")
        for order_id, key, refund_id, refused, created_at in rows:
            connection.execute(
                sa.text(
                    "insert into refund_requests (order_id, request_key, amount, refund_id, "
                    "refused, created_at) values (:o, :k, 100, :r, :f, :c)"
                ),
                {"o": order_id, "k": key, "r": refund_id, "f": refused, "c": created_at},
            )
    store.engine.dispose()

    upgraded = backend.store()
    with upgraded.engine.connect() as connection:
        pending = dict(
            connection.execute(
                sa.select(refund_requests.c.request_key, refund_requests.c.pending_order_id)
            ).all()
        )
    assert pending == {
        "a-done": None,
        "a-old": None,
        "a-new": order_a,
        "b-refused": None,
        "b-open": order_b,
    }
    for order_id, holder in ((order_a, "a-new"), (order_b, "b-open")):
        with pytest.raises(RefundPending) as blocked:
            upgraded.refund_requests.record(order_id, "next", 100, time.time() - DAY)
        assert blocked.value.key == holder


def test_a_database_at_version_15_gets_when_requests_were_last_sent(backend: Backend) -> None:
    """Version 15 had the marker but not `attempted_at`: step 16 adds it, from when each
    request was made, and refunds work on it."""
    store = backend.store()
    order_id = f"ORD-{backend.tag}"
    made = time.time() - 3600
    with store.engine.begin() as connection:  # back to the schema of version 15
        connection.exec_driver_sql("ALTER TABLE refund_requests DROP COLUMN attempted_at")
        connection.exec_driver_sql("DELETE FROM connector_schema_versions WHERE version = 16")
        connection.execute(
            sa.text(
                "insert into refund_requests (order_id, request_key, amount, refused, "
                "created_at, pending_order_id) values (:o, 'op-1', 100, :f, :c, :o)"
            ),
            {"o": order_id, "f": False, "c": made},
        )
    store.engine.dispose()

    upgraded = backend.store()
    with upgraded.engine.connect() as connection:
        attempted = connection.execute(sa.select(refund_requests.c.attempted_at)).scalar_one()
    assert attempted == made
    with pytest.raises(RefundPending) as blocked:  # sent an hour ago: still in flight
        upgraded.refund_requests.record(order_id, "op-2", 100, time.time() - DAY)
    assert blocked.value.key == "op-1"
