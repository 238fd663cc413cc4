"""A refund is made once per Idempotency-Key, whatever happens between a request and its
retry: the answer lost, Stripe's `charge.refunded` moving the index, "all that is left"
shrinking. The desk on a real database, against a Stripe that keeps idempotency keys as
Stripe documents (the same key and parameters: the same refund, replayed)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connectors.orders.desk import OrdersDesk
from connectors.orders.refunds import RefundDone, RefundRefused
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from tests.support.paid_orders import ORDER, no_turn, paid, refunded


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'orders.db'}")


def charge_refunded(store: ConnectorStore, in_all: int) -> None:
    refunded(store, in_all, charged=1000)


@dataclass
class Stripe:
    """Refunds with Stripe's idempotency: a key seen before answers its first refund (a
    replay), another amount under it is refused, and more than the charge is refused."""

    keys: dict[str, tuple[int, str]] = field(default_factory=dict)  # forgotten after 24 h
    made: dict[str, RefundDone] = field(default_factory=dict)  # by the key in its metadata
    refunded: int = 0

    async def made_under(self, payment_intent: str, key: str) -> RefundDone | None:
        return self.made.get(key)

    async def refund(self, order_id: str, payment_intent: str, amount: int, key: str) -> RefundDone:
        if key in self.keys:
            first, refund_id = self.keys[key]
            if first != amount:
                raise RefundRefused("this Idempotency-Key was used for another request", True)
            return RefundDone(refund_id, amount, "succeeded", replayed=True)
        if self.refunded + amount > 1000:
            raise RefundRefused("Stripe refused the refund: charge already refunded", True)
        self.refunded += amount
        self.keys[key] = (amount, f"re_{len(self.made) + 1}")
        self.made[key] = RefundDone(self.keys[key][1], amount, "succeeded", replayed=True)
        return RefundDone(self.keys[key][1], amount, "succeeded")


@dataclass
class AnswerLostOnce(Stripe):
    """Makes the first refund, but its answer is lost on the way back."""

    lost: bool = True

    async def refund(self, order_id: str, pi: str, amount: int, key: str) -> RefundDone:
        done = await super().refund(order_id, pi, amount, key)
        if self.lost:
            self.lost = False
            raise RefundRefused("Stripe could not be reached", conflict=False)
        return done


def test_a_retry_after_the_index_learnt_of_the_refund_is_the_same_refund(
    store: ConnectorStore,
) -> None:
    assert paid(store)
    stripe = Stripe()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    first = asyncio.run(desk.refund(ORDER, 500, "op-1"))  # the answer is lost on its way back
    charge_refunded(store, 500)
    again = asyncio.run(desk.refund(ORDER, 500, "op-1"))  # "repeat with the same key"
    assert stripe.refunded == 500
    assert (first["repeated"], again["repeated"]) == (False, True)
    assert again["refund"]["id"] == first["refund"]["id"]


def test_all_that_is_left_resolves_once_per_key(store: ConnectorStore) -> None:
    assert paid(store)
    stripe = Stripe()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    asyncio.run(desk.refund(ORDER, 300, "op-1"))
    charge_refunded(store, 300)
    rest = asyncio.run(desk.refund(ORDER, None, "op-2"))  # 700 left
    charge_refunded(store, 1000)
    again = asyncio.run(desk.refund(ORDER, None, "op-2"))  # nothing left now, but a retry
    assert (rest["refund"]["amount"], again["refund"]["amount"], again["repeated"]) == (
        700,
        700,
        True,
    )
    assert stripe.refunded == 1000
    with pytest.raises(Exception, match="used for a refund of 700") as other:
        asyncio.run(desk.refund(ORDER, 500, "op-2"))
    assert getattr(other.value, "status", None) == 409
    with pytest.raises(Exception, match="0 of 1000 eur minor units left") as spent:
        asyncio.run(desk.refund(ORDER, None, "op-3"))  # a new key: a new refund, refused
    assert getattr(spent.value, "status", None) == 409


def test_the_request_is_recorded_before_stripe_is_called(store: ConnectorStore) -> None:
    """Stripe did the refund but the bot died before answering: the retry replays it."""
    assert paid(store)

    stripe = AnswerLostOnce()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="could not be reached") as failed:
        asyncio.run(desk.refund(ORDER, None, "op-1"))
    assert getattr(failed.value, "status", None) == 502
    charge_refunded(store, 1000)
    again = asyncio.run(desk.refund(ORDER, None, "op-1"))
    assert (again["refund"]["amount"], again["repeated"], stripe.refunded) == (1000, True, 1000)


def test_a_key_retried_after_stripe_forgot_it_is_answered_from_the_record(
    store: ConnectorStore,
) -> None:
    """Stripe keeps idempotency keys 24 hours: the printed `--key` re-run the next day must
    not reach Stripe's create again (there it would be a new refund)."""
    assert paid(store)
    stripe = Stripe()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    first = asyncio.run(desk.refund(ORDER, 400, "op-1"))
    stripe.keys.clear()  # a day later
    again = asyncio.run(desk.refund(ORDER, 400, "op-1"))
    assert stripe.refunded == 400
    assert (again["repeated"], again["refund"]["id"]) == (True, first["refund"]["id"])


def test_a_key_retried_after_stripe_forgot_it_finds_the_refund_its_lost_answer_made(
    store: ConnectorStore,
) -> None:
    """Stripe made the refund but its answer was lost (`make orders` exits 3: "repeat with
    --key op-1"); the operator repeats the next day, when Stripe no longer knows the key."""
    assert paid(store)
    stripe = AnswerLostOnce()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))
    charge_refunded(store, 400)
    stripe.keys.clear()  # a day later
    again = asyncio.run(desk.refund(ORDER, 400, "op-1"))
    assert (stripe.refunded, again["repeated"], again["refund"]["id"]) == (400, True, "re_1")
    third = asyncio.run(desk.refund(ORDER, 400, "op-1"))  # now answered from the record
    assert (stripe.refunded, third["refund"]["status"]) == (400, "made earlier")


def test_a_key_retried_whose_request_never_reached_stripe_refunds_then(
    store: ConnectorStore,
) -> None:
    assert paid(store)

    @dataclass
    class Unreachable(Stripe):
        down: bool = True

        async def refund(self, order_id: str, pi: str, amount: int, key: str) -> RefundDone:
            if self.down:
                raise RefundRefused("Stripe could not be reached", conflict=False)
            return await super().refund(order_id, pi, amount, key)

    stripe = Unreachable()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))
    stripe.down = False
    again = asyncio.run(desk.refund(ORDER, 400, "op-1"))
    assert (stripe.refunded, again["repeated"]) == (400, False)


def test_a_new_key_while_a_refund_has_an_unknown_outcome_is_refused(
    store: ConnectorStore,
) -> None:
    assert paid(store)

    stripe = AnswerLostOnce()
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))
    with pytest.raises(Exception, match="unknown outcome: retry with --key op-1") as blocked:
        asyncio.run(desk.refund(ORDER, 400, "op-2"))  # `make orders refund` without --key
    assert getattr(blocked.value, "status", None) == 409
    assert stripe.refunded == 400
    again = asyncio.run(desk.refund(ORDER, 400, "op-1"))
    assert (again["repeated"], stripe.refunded) == (True, 400)
    asyncio.run(desk.refund(ORDER, 100, "op-2"))  # known now: another refund may go
    assert stripe.refunded == 500


def test_a_refund_stripe_refused_does_not_block_another_key(store: ConnectorStore) -> None:
    assert paid(store)
    stripe = Stripe(refunded=900)  # refunded elsewhere (the dashboard) before the index knew
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="already refunded"):
        asyncio.run(desk.refund(ORDER, 500, "op-1"))
    done = asyncio.run(desk.refund(ORDER, 100, "op-2"))
    assert (done["repeated"], stripe.refunded) == (False, 1000)


def test_a_key_clash_at_stripe_leaves_the_outcome_unknown(store: ConnectorStore) -> None:
    """Stripe's 409 for a key in use (a concurrent request under it) is no proof that
    nothing was refunded: another key stays blocked until the key's outcome is known."""
    assert paid(store)

    @dataclass
    class Busy(Stripe):
        async def refund(self, order_id: str, pi: str, amount: int, key: str) -> RefundDone:
            raise RefundRefused("key in use", conflict=True, nothing_done=False)

    desk = OrdersDesk(store, Busy(), no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="key in use"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))
    with pytest.raises(Exception, match="retry with --key op-1"):
        asyncio.run(desk.refund(ORDER, 400, "op-2"))


@dataclass
class Scripted(Stripe):
    """Each call first does what the script's next step says: `down` (no request reached
    Stripe), `lost` (the refund is made, its answer lost) or `ok`."""

    script: list[str] = field(default_factory=list)

    async def refund(self, order_id: str, pi: str, amount: int, key: str) -> RefundDone:
        step = self.script.pop(0) if self.script else "ok"
        if step == "down":
            raise RefundRefused("Stripe could not be reached", conflict=False)
        done = await super().refund(order_id, pi, amount, key)
        if step == "lost":
            raise RefundRefused("Stripe could not be reached", conflict=False)
        return done


def sent_days_ago(store: ConnectorStore, request_key: str, days: float) -> None:
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update refund_requests set created_at = ?, attempted_at = ? where request_key = ?",
            (time.time() - days * 86400, time.time() - days * 86400, request_key),
        )


def test_a_key_retried_days_later_blocks_another_key_while_its_outcome_is_unknown_again(
    store: ConnectorStore,
) -> None:
    assert paid(store)
    stripe = Scripted(script=["down", "lost"])
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))  # never reached Stripe
    sent_days_ago(store, "op-1", 2)
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))  # repeated as told: made, answer lost
    with pytest.raises(Exception, match="retry with --key op-1") as blocked:
        asyncio.run(desk.refund(ORDER, 400, "op-2"))
    assert getattr(blocked.value, "status", None) == 409
    assert stripe.refunded == 400


def test_a_refused_key_retried_while_another_keys_outcome_is_unknown_is_refused(
    store: ConnectorStore,
) -> None:
    assert paid(store)
    stripe = Scripted(refunded=900, script=["ok", "lost"])  # 900 refunded in the dashboard
    desk = OrdersDesk(store, stripe, no_turn)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="already refunded"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))  # refused: more than is left
    stripe.refunded = 0  # the dashboard's refund turns out to have failed
    with pytest.raises(Exception, match="could not be reached"):
        asyncio.run(desk.refund(ORDER, 400, "op-2"))  # made, answer lost
    with pytest.raises(Exception, match="retry with --key op-2"):
        asyncio.run(desk.refund(ORDER, 400, "op-1"))
    assert stripe.refunded == 400
