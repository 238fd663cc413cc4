"""Hand-overs to a person: who is handed over, since when, and whether the bot is back.

A hand-over is `open` while the bot is paused for its customer, then `ended` (by staff or the
timeout). Ending it and handing the conversation back to the bot (the turn that tells the
customer and clears the slot) are two steps, so that a crash between them, or an end
written by the command-line tool, is picked up again: an ended hand-over not yet handed
back is claimed with a lease before its turn runs. Every change is a conditional update, so
of several replicas one wins; a partial unique index keeps one open hand-over per customer.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import handovers
from connectors.storage.sealing import Sealer

logger = logging.getLogger(__name__)

OPEN = "open"
ENDED = "ended"
REF_PREFIX = "H-"
# Upper case letters and digits that cannot be mistaken for each other (no 0/O, 1/I/L).
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REF_LENGTH = 8
NEW_REF_ATTEMPTS = 3


def new_ref() -> str:
    """A reference such as 'H-7KQ2M9XA': random, short enough to type."""
    return REF_PREFIX + "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))


@dataclass(frozen=True)
class Handover:
    """One hand-over, opened: the customer's real id."""

    ref: str
    customer_id: str
    reason: str
    status: str
    opened_at: float
    staff_replied_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    handed_back_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def quiet_since(self) -> float:
        """Since when nobody from the shop has written: the timeout counts from here."""
        return max(self.opened_at, self.staff_replied_at or 0.0)


class Handovers:
    """The handovers table."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def open(
        self,
        customer_id: str,
        reason: str,
        then: Callable[[Connection, Handover], None] | None = None,
    ) -> tuple[Handover, bool]:
        """The customer's open hand-over, opened now unless there is one; True when new.
        `then` writes what a new one entails (the shop's notices) in the same transaction:
        if it fails, no hand-over is open, so a replayed turn opens it again and tells."""
        for _ in range(NEW_REF_ATTEMPTS):
            existing = self.current(customer_id)
            if existing is not None and existing.is_open:
                return existing, False
            ref = new_ref()
            customer = self.sealer.customer_columns(handovers, ref, customer_id)
            now = time.time()
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        handovers.insert().values(
                            ref=ref, **customer, reason=reason, status=OPEN, opened_at=now
                        )
                    )
                    # An ended one whose hand-back has not run yet is overtaken: the bot
                    # took this turn, so the conversation is back with it already.
                    connection.execute(
                        handovers.update()
                        .where(self.sealer.owned_by(handovers, customer_id))
                        .where(handovers.c.status == ENDED)
                        .where(handovers.c.handed_back_at.is_(None))
                        .values(handed_back_at=now)
                    )
                    opened = Handover(ref, customer_id, reason, OPEN, now)
                    if then is not None:
                        then(connection, opened)
            except IntegrityError:
                continue  # another replica opened one for the customer (or the ref was taken)
            return opened, True
        raise RuntimeError("could not open a hand-over: references kept clashing")

    def current(self, customer_id: str) -> Handover | None:
        """The customer's latest hand-over that is open or not yet handed back."""
        query = (
            sa.select(handovers)
            .where(self.sealer.owned_by(handovers, customer_id))
            .where(handovers.c.handed_back_at.is_(None))
            .order_by(handovers.c.opened_at.desc())
            .limit(1)
        )
        return next(self._opened(query), None)

    def find(self, ref: str) -> Handover | None:
        return next(self._opened(sa.select(handovers).where(handovers.c.ref == ref)), None)

    def listing(self, status: str | None = OPEN) -> list[Handover]:
        """Hand-overs (those in `status`, every one with None), oldest first."""
        query = sa.select(handovers).order_by(handovers.c.opened_at)
        if status is not None:
            query = query.where(handovers.c.status == status)
        return list(self._opened(query))

    def staff_replied(self, ref: str) -> bool:
        """Notes a reply from the shop on an open hand-over; False when it is not open."""
        return self._update(ref, handovers.c.status == OPEN, staff_replied_at=time.time())

    def end(self, ref: str, ended_by: str) -> bool:
        """Ends an open hand-over; False when it was not open (ended before, or unknown)."""
        return self._update(
            ref, handovers.c.status == OPEN, status=ENDED, ended_at=time.time(), ended_by=ended_by
        )

    def timed_out(self, quiet_seconds: float) -> list[str]:
        """References of open hand-overs in which nobody from the shop wrote for that long."""
        cutoff = time.time() - quiet_seconds
        last_word = sa.func.coalesce(handovers.c.staff_replied_at, handovers.c.opened_at)
        query = sa.select(handovers.c.ref).where(handovers.c.status == OPEN)
        with self.engine.connect() as connection:
            return list(connection.execute(query.where(last_word < cutoff)).scalars())

    def to_hand_back(self, lease_seconds: float) -> list[Handover]:
        """Ended hand-overs whose conversation is not back with the bot, and that nobody is
        handing back now."""
        return list(self._opened(sa.select(handovers).where(self._hand_back_free(lease_seconds))))

    def claim_hand_back(self, ref: str, lease_seconds: float) -> bool:
        """Takes the hand-back of an ended hand-over for `lease_seconds`; False when it is
        done, not ended, or another process holds it."""
        return self._update(
            ref, self._hand_back_free(lease_seconds), hand_back_claimed_at=time.time()
        )

    def handed_back(self, ref: str) -> bool:
        """Records that the bot has the conversation again (its turn ran)."""
        return self._update(ref, handovers.c.status == ENDED, handed_back_at=time.time())

    def _hand_back_free(self, lease_seconds: float) -> Any:
        claimed = handovers.c.hand_back_claimed_at
        return sa.and_(
            handovers.c.status == ENDED,
            handovers.c.handed_back_at.is_(None),
            sa.or_(claimed.is_(None), claimed < time.time() - lease_seconds),
        )

    def _update(self, ref: str, condition: Any, **values: Any) -> bool:
        query = handovers.update().where(handovers.c.ref == ref).where(condition)
        with self.engine.begin() as connection:
            changed: int = connection.execute(query.values(**values)).rowcount
        return changed == 1

    def _opened(self, query: Any) -> Iterator[Handover]:
        """The rows of `query`, opened (a row whose customer does not open is skipped)."""
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        named = "hand-over {.ref}".format
        for row, customer_id in self.sealer.with_customers(handovers, rows, named):
            yield Handover(
                row.ref,
                customer_id,
                row.reason,
                row.status,
                row.opened_at,
                row.staff_replied_at,
                row.ended_at,
                row.ended_by,
                row.handed_back_at,
            )
