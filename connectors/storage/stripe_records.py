"""Stripe's side: each event id once (Stripe delivers at least once, for up to 3 days), one
confirmation per Checkout Session, and the first session paid for each order."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.keys import UnreadableError
from connectors.storage.schema import order_payments, stripe_events, stripe_fulfilments
from connectors.storage.sealing import Sealer, binding


class StripeRecords:
    """Stripe events as recorded, and the claims that make fulfilment happen once."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def record_event(
        self,
        event_id: str,
        event_type: str,
        payload: str | None = None,
        customer_id: str | None = None,
        claim: str | None = None,
        recovery: tuple[str, str] | None = None,
    ) -> bool:
        """Records a verified event before it is acknowledged, held under `claim` by this
        process; False for a re-delivery. An expiry of a session with a recovery URL is
        recorded with `recovery` (its session id and order id; the order sealed like the
        customer), for `recovery_origin`."""
        now = time.time()
        customer = (
            self.sealer.customer_columns(stripe_events, event_id, customer_id)
            if customer_id
            else {}
        )
        bound_to = binding(event_id, customer.get("customer_pseudonym"))
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    stripe_events.insert().values(
                        event_id=event_id,
                        event_type=event_type,
                        received_at=now,
                        payload=self.sealer.seal(stripe_events, "payload", bound_to, payload),
                        claimed_at=now,
                        claim_token=claim,
                        **customer,
                        **self._recovery_columns(recovery, bound_to),
                    )
                )
        except IntegrityError:
            return False
        return True

    def _recovery_columns(
        self, recovery: tuple[str, str] | None, bound_to: str
    ) -> dict[str, str | None]:
        """The columns of (session id, order id) of an expiry with a recovery URL."""
        if recovery is None:
            return {}
        session_id, order_id = recovery
        return {
            "checkout_session_id": session_id,
            "order_sealed": self.sealer.seal(stripe_events, "order_sealed", bound_to, order_id),
        }

    def recovery_origin(self, session_id: str) -> tuple[str, str] | None:
        """The customer and order of the expired session `session_id`, as recorded with its
        expiry (see `record_event`), or None when no expiry of it with recovery was recorded
        (or the row does not open: UnreadableError)."""
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(
                        stripe_events.c.event_id,
                        stripe_events.c.customer_pseudonym,
                        stripe_events.c.customer_sealed,
                        stripe_events.c.order_sealed,
                    )
                    .where(stripe_events.c.checkout_session_id == session_id)
                    .where(stripe_events.c.order_sealed.is_not(None))
                    .order_by(stripe_events.c.received_at)
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        bound_to = binding(row["event_id"], row["customer_pseudonym"])
        try:
            customer = self.sealer.open(
                stripe_events, "customer_sealed", bound_to, row["customer_sealed"]
            )
            order_id = self.sealer.open(
                stripe_events, "order_sealed", bound_to, row["order_sealed"]
            )
        except UnreadableError:
            return None  # altered or moved: the payment is then reported as unmapped
        if not customer or not order_id:
            return None
        return customer, order_id

    def mark_processed(self, event_id: str, outcome: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                stripe_events.update()
                .where(stripe_events.c.event_id == event_id)
                .values(processed_at=time.time(), outcome=outcome)
            )

    def outcome(self, event_id: str) -> str | None:
        """How the event was handled ('triggered', 'already_fulfilled', …), None until then."""
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(stripe_events.c.outcome).where(stripe_events.c.event_id == event_id)
            ).scalar()
        return str(value) if value is not None else None

    def claim_fulfilment(self, checkout_session_id: str, event_id: str) -> bool:
        """True for the event that confirms this Checkout Session — the first one to claim
        it, also when that event is replayed after a crash — and False for every other."""
        return self._first_claim(
            stripe_fulfilments.c.checkout_session_id,
            checkout_session_id,
            stripe_fulfilments.c.event_id,
            event_id,
        )

    def claim_order_payment(
        self, customer_id: str, order_id: str, checkout_session_id: str
    ) -> bool:
        """True when this Checkout Session is the first paid for the customer's order (it
        confirms the order, also when its event is replayed), False for any other session of
        that order: a duplicate payment. One insert decides it, so two replicas cannot both
        confirm. The order is named with its customer's pseudonym, so two customers' orders
        that happen to share an id never count as one."""
        return self._first_claim(
            order_payments.c.order_key,
            f"{self.sealer.keys.pseudonym(customer_id)}/{order_id}",
            order_payments.c.checkout_session_id,
            checkout_session_id,
        )

    def _first_claim(self, key_column: Any, key: str, owner_column: Any, owner: str) -> bool:
        """True when `owner` is the first to claim `key` (a unique insert decides, whatever
        the replicas), or was it before; False when someone else was."""
        table = key_column.table
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    table.insert().values(
                        {key_column.name: key, owner_column.name: owner, "claimed_at": time.time()}
                    )
                )
        except IntegrityError:
            with self.engine.connect() as connection:
                first = connection.execute(
                    sa.select(owner_column).where(key_column == key)
                ).scalar()
            return bool(first == owner)
        return True
