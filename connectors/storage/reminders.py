"""Checkout reminders: one per customer and order, due some minutes before its link expires.

The turn that sends a payment link asks for one (shop_contract/custom_messages.py
`CHECKOUT_REMINDER_KEY`); a newer link of the same order moves it to that link and its
time, and makes it due again. The sweep (connectors/stripe/reminders.py) claims a due
reminder under a lease, so of several replicas one runs its turn, and marks it done after.
Whether anything is sent is the action's call (the order may be paid, or the customer may
have said stop); the outbox key makes it at most one message per order whatever happens.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import checkout_reminders as reminders
from connectors.storage.sealing import Sealer
from shop_contract.custom_messages import REMINDER_AT, REMINDER_ORDER_ID, REMINDER_SESSION_ID

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reminder:
    """A reminder due: whom to remind of which order's link."""

    reminder_id: str
    customer_id: str
    order_id: str
    checkout_session_id: str
    remind_at: float


def reminder_of(request: Any) -> tuple[str, str, float] | None:
    """(order id, session id, when) of a reminder request (CHECKOUT_REMINDER_KEY's value),
    or None when it is malformed."""
    if not isinstance(request, dict):
        return None
    order_id, session_id = request.get(REMINDER_ORDER_ID), request.get(REMINDER_SESSION_ID)
    remind_at = request.get(REMINDER_AT)
    if not isinstance(order_id, str) or not isinstance(session_id, str) or not order_id:
        return None
    if isinstance(remind_at, bool) or not isinstance(remind_at, (int, float)):
        return None
    return order_id, session_id, float(remind_at)


class Reminders:
    """The checkout_reminders table."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def schedule(self, customer_id: str, order_id: str, session_id: str, remind_at: float) -> None:
        """The reminder of the order's link `session_id`, due at `remind_at`: a new one,
        or the order's one moved to this link (due again unless it is that link already)."""
        for _ in range(2):
            if self._move(customer_id, order_id, session_id, remind_at):
                return
            reminder_id = secrets.token_hex(8)
            customer = self.sealer.customer_columns(reminders, reminder_id, customer_id)
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        reminders.insert().values(
                            reminder_id=reminder_id,
                            **customer,
                            order_id=order_id,
                            checkout_session_id=session_id,
                            remind_at=remind_at,
                            created_at=time.time(),
                        )
                    )
                return
            except IntegrityError:
                continue  # written meanwhile (another replica, a replayed turn): move it
        raise RuntimeError("could not schedule a checkout reminder")

    def _move(self, customer_id: str, order_id: str, session_id: str, remind_at: float) -> bool:
        """Points the order's reminder at a newer link; True when the order has one."""
        mine = sa.and_(
            self.sealer.owned_by(reminders, customer_id), reminders.c.order_id == order_id
        )
        with self.engine.begin() as connection:
            found = connection.execute(sa.select(reminders.c.reminder_id).where(mine)).first()
            if found is None:
                return False
            connection.execute(
                reminders.update()
                .where(mine)
                .where(reminders.c.checkout_session_id != session_id)
                .values(
                    checkout_session_id=session_id,
                    remind_at=remind_at,
                    claimed_at=None,
                    done_at=None,
                )
            )
        return True

    def due(self, lease_seconds: float, now: float | None = None) -> list[Reminder]:
        """Reminders whose time has come, not done, and that nobody is running now."""
        query = sa.select(reminders).where(self._free(lease_seconds, now or time.time()))
        return list(self._opened(query.order_by(reminders.c.remind_at)))

    def claim(self, reminder_id: str, lease_seconds: float, now: float | None = None) -> bool:
        """Takes the reminder's turn for `lease_seconds`; False when it is done, moved to a
        later time, or another process holds it."""
        moment = now or time.time()
        query = (
            reminders.update()
            .where(reminders.c.reminder_id == reminder_id)
            .where(self._free(lease_seconds, moment))
            .values(claimed_at=moment)
        )
        with self.engine.begin() as connection:
            changed: int = connection.execute(query).rowcount
        return changed == 1

    def done(self, reminder: Reminder) -> bool:
        """Records that the reminder's turn ran; False when its order got a newer link
        meanwhile (that link's reminder stays due)."""
        query = (
            reminders.update()
            .where(reminders.c.reminder_id == reminder.reminder_id)
            .where(reminders.c.checkout_session_id == reminder.checkout_session_id)
            .values(done_at=time.time())
        )
        with self.engine.begin() as connection:
            changed: int = connection.execute(query).rowcount
        return changed == 1

    def _free(self, lease_seconds: float, now: float) -> Any:
        claimed = reminders.c.claimed_at
        return sa.and_(
            reminders.c.done_at.is_(None),
            reminders.c.remind_at <= now,
            sa.or_(claimed.is_(None), claimed < now - lease_seconds),
        )

    def _opened(self, query: Any) -> Iterator[Reminder]:
        """The rows of `query`, opened (a row whose customer does not open is skipped)."""
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        named = "checkout reminder {.reminder_id}".format
        for row, customer_id in self.sealer.with_customers(reminders, rows, named):
            yield Reminder(
                row.reminder_id,
                customer_id,
                row.order_id,
                row.checkout_session_id,
                row.remind_at,
            )
