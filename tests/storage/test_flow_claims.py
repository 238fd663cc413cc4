"""Flow token claims on SQLite and PostgreSQL: one completion turn per Flow makes the order."""

from __future__ import annotations

import threading
import time

from tests.storage.conftest import Backend


def test_a_flow_token_is_held_by_its_claimer_until_its_turn_is_done(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")

    assert store.flow_claims.claim(token, "reply-a") == "ours"
    assert backend.store().flow_claims.claim(token, "reply-a") == "ours"  # its replay
    assert store.flow_claims.claim(token, "endpoint-b") == "held"  # waits, is not dropped
    store.flow_claims.release(token, "endpoint-b")  # not the holder: changes nothing
    store.flow_claims.finish(token, "endpoint-b")
    assert store.flow_claims.is_done(token) is False
    store.flow_claims.finish(token, "reply-a")
    assert store.flow_claims.is_done(token) is True
    assert store.flow_claims.claim(token, "endpoint-b") == "done"
    assert backend.store().flow_claims.claim(token, "reply-a") == "done"
    assert store.flow_claims.claim(backend.flow_token("2"), "endpoint-b") == "ours"


def test_a_flow_token_claim_no_longer_renewed_is_taken_over(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")
    assert store.flow_claims.claim(token, "endpoint-a", 60) == "ours"
    assert store.flow_claims.claim(token, "reply-b", 60) == "held"
    assert store.flow_claims.renew(token, "endpoint-a") is True
    time.sleep(0.05)  # endpoint-a's process died: no renewal since
    assert backend.store().flow_claims.claim(token, "reply-b", 0.01) == "ours"
    assert store.flow_claims.renew(token, "endpoint-a") is False  # a late worker learns it
    store.flow_claims.finish(token, "endpoint-a")
    assert store.flow_claims.is_done(token) is False
    store.flow_claims.finish(token, "reply-b")
    assert store.flow_claims.is_done(token) is True


def test_a_released_flow_token_can_be_claimed_by_another_completion(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")
    assert store.flow_claims.claim(token, "reply-a") == "ours"
    store.flow_claims.release(token, "reply-a")
    assert store.flow_claims.claim(token, "endpoint-b") == "ours"


def test_concurrent_claims_of_one_flow_token_have_one_winner(backend: Backend) -> None:
    stores = [backend.store(), backend.store()]
    token = backend.flow_token("race")
    start = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def claim(number: int) -> None:
        start.wait()
        won = stores[number % 2].flow_claims.claim(token, f"claimer-{number}")
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["held"] * 7 + ["ours"]
