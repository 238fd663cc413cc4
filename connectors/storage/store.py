"""The connector's own tables, next to Rasa's tracker store (same DATABASE_URL).

- inbound messages: Meta re-delivers; the primary key makes a message id count once,
  also across restarts;
- outbound messages: what we sent, and the delivery statuses Meta reports for it;
- customers: when each last wrote, for WhatsApp's 24-hour window;
- flow token claims: one order per WhatsApp Flow, whichever path its completion takes;
- Stripe events: each event id once (Stripe delivers at least once, for up to 3 days);
- fulfilments: one confirmation per Checkout Session, however many events say it was paid;
- order payments: the first Checkout Session paid for an order, the one that confirms it;
- the notification outbox: order notifications, kept until Meta has accepted them.

Nothing here names a customer in clear: `customer_key` columns hold the customer's
pseudonym (a keyed hash, see connectors/storage/keys.py), `customer_sealed` the id itself
sealed with AES-GCM, and bodies and payloads are sealed too. Callers pass and get back real
ids and plain text; sealing happens here. WhatsApp message ids (base64 that contains the
customer's number) and Flow tokens are kept as SHA-256 digests: they stay unique for dedup
and lookups, and cannot be turned back without the id itself. A sealed value is bound to
its row: its associated data names the table, the column, the row's natural key (ROW_IDS)
and the row's `customer_key`, so a value moved to another row (another customer's id,
another message's body) does not open, nor does a row whose customer_key was changed to
file it under another customer.

Calls are synchronous SQLAlchemy Core; async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from connectors.metrics import UNREADABLE_ROWS
from connectors.storage.keys import ROW_SEALED_PREFIX, SEALED_PREFIX, KeyRing, UnreadableError
from connectors.storage.migrations import migrate
from connectors.storage.tracker_store import is_sqlite, sqlite_engine

logger = logging.getLogger(__name__)

metadata = sa.MetaData()  # schema changes go through connectors/storage/migrations.py

inbound_messages = sa.Table(
    "wa_inbound_messages",
    metadata,
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("customer_key", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float, nullable=True),
    # What replays it after a crash, and since when a process has held it.
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),  # who holds it now
    sa.Column("outcome", sa.String(32), nullable=True),  # 'unreadable': set aside, not run
)

outbound_messages = sa.Table(
    "wa_outbound_messages",
    metadata,
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("customer_key", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),  # reply | notification | template
    sa.Column("body", sa.Text, nullable=True),  # notifications only: needed for a fallback
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_at", sa.Float, nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("error_title", sa.String(255), nullable=True),
)

customers = sa.Table(
    "wa_customers",
    metadata,
    sa.Column("customer_key", sa.String(255), primary_key=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("last_inbound_at", sa.Float, nullable=False),
)

flow_token_claims = sa.Table(
    "wa_flow_token_claims",
    metadata,
    sa.Column("flow_token", sa.String(512), primary_key=True),  # SHA-256 hex of the token
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.Column("claimer", sa.String(64), nullable=True),  # whose completion turn holds it
    sa.Column("done_at", sa.Float, nullable=True),  # when that turn made the order
)

stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("processed_at", sa.Float, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("customer_key", sa.String(255), nullable=True, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),
)

stripe_fulfilments = sa.Table(
    "stripe_fulfilments",
    metadata,
    sa.Column("checkout_session_id", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

order_payments = sa.Table(
    "stripe_order_payments",
    metadata,
    # "<customer pseudonym>/<order id>": order ids are short, unique per customer only.
    sa.Column("order_key", sa.String(255), primary_key=True),
    sa.Column("checkout_session_id", sa.String(255), nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # What made the message (e.g. the Stripe event id and its position in the turn): a
    # replayed turn produces the same keys, so nothing is queued twice.
    sa.Column("dedup_key", sa.String(255), nullable=False, unique=True),
    sa.Column("customer_key", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    # pending | sent | dead | undeliverable (WhatsApp's rules forbid sending it at all)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
    sa.Column("sent_at", sa.Float, nullable=True),
    sa.Column("message_id", sa.String(255), nullable=True),
    sa.Column("last_error", sa.String(255), nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),  # the worker sending it now
)


# Every table that holds a customer's data: its pseudonym column is `customer_key`, and
# these columns are sealed (AES-GCM, with the table, column and row as associated data).
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "wa_inbound_messages": ("customer_sealed", "payload"),
    "wa_outbound_messages": ("customer_sealed", "body"),
    "wa_customers": ("customer_sealed",),
    "stripe_events": ("customer_sealed", "payload"),
    "notification_outbox": ("customer_sealed", "body"),
}
# The column that names a row of each of those tables: a natural key, known before the row is
# inserted and never updated (a customer's pseudonym changes only when re-encryption
# rewrites the whole row under a new key).
ROW_IDS: dict[str, str] = {
    "wa_inbound_messages": "message_id",  # digest of Meta's message id
    "wa_outbound_messages": "message_id",
    "wa_customers": "customer_key",
    "stripe_events": "event_id",
    "notification_outbox": "dedup_key",
}
CUSTOMER_TABLES = {
    table.name: table for table in metadata.sorted_tables if table.name in SEALED_COLUMNS
}


def column_context(table: str, column: str) -> bytes:
    """The associated data of the old form (SEALED_PREFIX), which names no row: only
    re-encryption still opens it, to rewrite it in the row-bound form."""
    return f"{table}.{column}".encode()


def row_context(table: str, column: str, row: str) -> bytes:
    """The associated data a sealed value (ROW_SEALED_PREFIX) of `table.column` in the row
    bound as `row` (see `binding`) is authenticated with. Table and column names hold no
    NUL, so the separator keeps every (column, row) pair's context distinct."""
    return f"{table}.{column}\0{row}".encode()


def binding(row_id: str, customer_key: str | None) -> str:
    """What a row's sealed values are bound to: its natural key and its customer's
    pseudonym. Natural keys (digests, Stripe ids, dedup keys, pseudonyms) hold no NUL."""
    return f"{row_id}\0{customer_key or ''}"


def natural_key(table: sa.Table, row: Mapping[str, Any]) -> str:
    """The natural key (ROW_IDS) of a row of `table`."""
    return str(row[ROW_IDS[table.name]])


def row_identity(table: sa.Table, row: Mapping[str, Any]) -> str:
    """The binding of a stored row of `table`, as its sealed values are bound to it."""
    return binding(natural_key(table, row), row.get("customer_key"))


def digest(identifier: str) -> str:
    """How a message id or Flow token is stored: its SHA-256, in hex."""
    return hashlib.sha256(identifier.encode()).hexdigest()


def new_claim() -> str:
    """A claim token: who holds a row, so that only the holder renews or finishes it."""
    return secrets.token_hex(16)


FlowClaim = Literal["ours", "done", "held"]
# A flow token's claim not renewed for this long was left by a process that died mid-turn.
FLOW_CLAIM_LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    customer_key: str
    body: str
    status: str
    attempts: int
    created_at: float
    last_error: str | None
    claim: str | None = None  # set on entries a worker has claimed
    unreadable: bool = False  # listed only: its sealed values do not open (customer, body "")


# Work older than this is not replayed any more: Meta and Stripe have moved on, and a
# message that fails every time must not be retried for ever.
REPLAY_HORIZON_SECONDS = 24 * 60 * 60

# Later statuses win; an out-of-order 'sent' never overwrites 'read'.
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class OutboundRecord:
    message_id: str
    customer_key: str
    kind: str
    body: str | None
    status: str


class ConnectorStore:
    """The connector's tables on one SQLAlchemy engine."""

    def __init__(self, url: str, keys: KeyRing | None = None, verify: bool = True) -> None:
        """`keys` defaults to TRACKER_ENCRYPTION_KEY; start-up stops (KeyConfigError,
        StoredDataError) when it is missing or does not open what is stored — unless
        `verify` is False, which only re-encryption uses."""
        from connectors.storage.checks import check_tables_readable

        self.keys = keys or KeyRing.from_env()
        self.engine = (
            sqlite_engine(url)
            if is_sqlite(url)
            else sa.create_engine(url, future=True, pool_pre_ping=True)
        )
        migrate(self.engine)
        if verify:
            check_tables_readable(self.engine, self.keys)

    def seal(self, table: sa.Table, column: str, row: str, value: str | None) -> str | None:
        """`value` sealed for `table.column` of the row bound as `row` (see `binding`)."""
        if value is None:
            return None
        return self.keys.seal(value, row_context(table.name, column, row), ROW_SEALED_PREFIX)

    def open(self, table: sa.Table, column: str, row: str, value: str | None) -> str | None:
        """Opens a value sealed for this column and row; UnreadableError when it was made
        for another row or column, altered, or is in the old form that names no row."""
        if value is None:
            return None
        where = f"{table.name}.{column}"
        if value.startswith(SEALED_PREFIX):
            raise UnreadableError(
                f"{where}: sealed in the old form that does not name its row; run "
                f"`make privacy ARGS=reencrypt` to rewrite it"
            )
        try:
            return self.keys.open(value, row_context(table.name, column, row), ROW_SEALED_PREFIX)
        except UnreadableError as error:
            raise UnreadableError(f"{where}: {error}") from None

    def customer_columns(
        self, table: sa.Table, row_id: str, customer_id: str
    ) -> dict[str, str | None]:
        """The pseudonym and the sealed id of a customer, for the row of `table` whose
        natural key is `row_id`."""
        pseudonym = self.keys.pseudonym(customer_id)
        return {
            "customer_key": pseudonym,
            "customer_sealed": self.seal(
                table, "customer_sealed", binding(row_id, pseudonym), customer_id
            ),
        }

    def owned_by(self, table: sa.Table, customer_id: str) -> Any:
        """A WHERE clause for the customer's rows, whichever key they were written under."""
        return table.c.customer_key.in_(self.keys.pseudonyms(customer_id))

    def record_inbound(
        self,
        message_id: str,
        customer_key: str,
        now: float | None = None,
        payload: str | None = None,
        claim: str | None = None,
    ) -> bool:
        """Records a message id, held under `claim` by this process; False for a re-delivery."""
        at = now or time.time()
        stored_id = digest(message_id)
        customer = self.customer_columns(inbound_messages, stored_id, customer_key)
        bound_to = binding(stored_id, customer["customer_key"])
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    inbound_messages.insert().values(
                        message_id=stored_id,
                        **customer,
                        received_at=at,
                        payload=self.seal(inbound_messages, "payload", bound_to, payload),
                        claimed_at=at,
                        claim_token=claim,
                    )
                )
        except IntegrityError:
            return False
        return True

    def mark_processed(self, message_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                inbound_messages.update()
                .where(inbound_messages.c.message_id == digest(message_id))
                .values(processed_at=time.time())
            )

    def touch_customer(self, customer_key: str, at: float) -> None:
        """Remembers the customer's latest inbound time (never moves it backwards)."""
        pseudonym = self.keys.pseudonym(customer_key)
        with self.engine.begin() as connection:
            updated = connection.execute(
                customers.update()
                .where(customers.c.customer_key == pseudonym)
                .where(customers.c.last_inbound_at < at)
                .values(last_inbound_at=at)
            ).rowcount
            if updated:
                return
            exists = connection.execute(
                sa.select(customers.c.customer_key).where(customers.c.customer_key == pseudonym)
            ).first()
            if exists is None:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            customers.insert().values(
                                **self.customer_columns(customers, pseudonym, customer_key),
                                last_inbound_at=at,
                            )
                        )
                except IntegrityError:
                    pass  # a concurrent first message won; its time is as good

    def last_inbound_at(self, customer_key: str) -> float | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(sa.func.max(customers.c.last_inbound_at)).where(
                    self.owned_by(customers, customer_key)
                )
            ).scalar()
        return float(value) if value is not None else None

    def record_outbound(
        self, message_id: str, customer_key: str, kind: str, body: str | None = None
    ) -> None:
        stored_id = digest(message_id)
        customer = self.customer_columns(outbound_messages, stored_id, customer_key)
        bound_to = binding(stored_id, customer["customer_key"])
        with self.engine.begin() as connection:
            connection.execute(
                outbound_messages.insert().values(
                    message_id=stored_id,
                    **customer,
                    kind=kind,
                    body=self.seal(outbound_messages, "body", bound_to, body),
                    sent_at=time.time(),
                    status="accepted",
                )
            )

    def record_status(
        self,
        message_id: str,
        status: str,
        at: float,
        error_code: int | None = None,
        error_title: str | None = None,
    ) -> OutboundRecord | None:
        """Applies a delivery status; returns the message's record when the status changed it.

        The change is a conditional update on the status that was read: of two replicas
        handling statuses of one message at once (or a status delivered twice), exactly one
        moves it to `failed`, so what follows a failure (the fallback) happens once.
        """
        while True:
            with self.engine.begin() as connection:
                row = self._outbound_row(connection, message_id)
                if row is None:
                    return None
                if STATUS_RANK.get(status, -1) <= STATUS_RANK.get(row.status, -1):
                    return None
                changed = connection.execute(
                    outbound_messages.update()
                    .where(outbound_messages.c.message_id == row.message_id)
                    .where(outbound_messages.c.status == row.status)
                    .values(
                        status=status, status_at=at, error_code=error_code, error_title=error_title
                    )
                ).rowcount
            if changed:
                return self._outbound_record(message_id, row, status)
            # another status got there first: read it again and compare ranks again

    def _outbound_record(self, message_id: str, row: Any, status: str) -> OutboundRecord:
        bound_to = row_identity(outbound_messages, row._mapping)
        customer = self.open(outbound_messages, "customer_sealed", bound_to, row.customer_sealed)
        return OutboundRecord(
            message_id,
            str(customer),
            row.kind,
            self.open(outbound_messages, "body", bound_to, row.body),
            status,
        )

    @staticmethod
    def _outbound_row(connection: Any, message_id: str) -> Any:
        """The row of a message we sent, by its real id, or None."""
        return connection.execute(
            sa.select(outbound_messages).where(outbound_messages.c.message_id == digest(message_id))
        ).first()

    def outbound(self, message_id: str) -> OutboundRecord | None:
        with self.engine.connect() as connection:
            row = self._outbound_row(connection, message_id)
        if row is None:
            return None
        return self._outbound_record(message_id, row, row.status)

    def claim_flow_token(
        self, flow_token: str, claimer: str, lease_seconds: float = FLOW_CLAIM_LEASE_SECONDS
    ) -> FlowClaim:
        """Claims a flow token for the completion turn of `claimer` (the digest of the
        nfm_reply's message id, or a claim token of the Flow endpoint's turn).

        "ours": this claimer holds it now (first claim; its own again, as a replay after a
        crash; or another claimer's whose turn stopped renewing it for `lease_seconds`: that
        process died); "done": a turn made the order; "held": another claimer's turn still
        runs, so this completion must wait (be replayed) rather than be dropped.
        """
        stored = digest(flow_token)
        while True:
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        flow_token_claims.insert().values(
                            flow_token=stored, claimed_at=time.time(), claimer=claimer
                        )
                    )
                return "ours"
            except IntegrityError:
                pass
            with self.engine.connect() as connection:
                row = connection.execute(
                    sa.select(flow_token_claims).where(flow_token_claims.c.flow_token == stored)
                ).first()
            if row is None:
                continue  # released meanwhile: claim it again
            if row.done_at is not None:
                return "done"
            now = time.time()
            if row.claimer != claimer and row.claimed_at >= now - lease_seconds:
                return "held"
            with self.engine.begin() as connection:
                taken = connection.execute(
                    flow_token_claims.update()
                    .where(flow_token_claims.c.flow_token == stored)
                    .where(flow_token_claims.c.claimed_at == row.claimed_at)
                    .where(flow_token_claims.c.done_at.is_(None))
                    .values(claimer=claimer, claimed_at=now)
                ).rowcount
            if taken:
                return "ours"
            # changed meanwhile (renewed, finished, released): read it again

    def renew_flow_token(self, flow_token: str, claimer: str) -> bool:
        """Renews the claimer's hold on a flow token while its turn runs; False once it is
        not held by it any more."""
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                flow_token_claims.update()
                .where(self._flow_claim(flow_token, claimer))
                .values(claimed_at=time.time())
            ).rowcount
        return renewed == 1

    def _flow_claim(self, flow_token: str, claimer: str) -> Any:
        """An update or delete of a flow token's unfinished claim held by `claimer`."""
        return (
            (flow_token_claims.c.flow_token == digest(flow_token))
            & (flow_token_claims.c.claimer == claimer)
            & flow_token_claims.c.done_at.is_(None)
        )

    def finish_flow_token(self, flow_token: str, claimer: str) -> None:
        """The claimer's completion turn made the order: the token is used up for good."""
        with self.engine.begin() as connection:
            connection.execute(
                flow_token_claims.update()
                .where(self._flow_claim(flow_token, claimer))
                .values(done_at=time.time())
            )

    def flow_token_done(self, flow_token: str) -> bool:
        """True once a completion turn of this flow token made the order."""
        with self.engine.connect() as connection:
            done = connection.execute(
                sa.select(flow_token_claims.c.done_at).where(
                    flow_token_claims.c.flow_token == digest(flow_token)
                )
            ).scalar()
        return done is not None

    def release_flow_token(self, flow_token: str, claimer: str) -> None:
        """Gives a claimed flow token back, after the claimer's turn failed, so that a later
        completion of the same Flow (or its re-delivery) can still create the order."""
        with self.engine.begin() as connection:
            connection.execute(
                flow_token_claims.delete().where(self._flow_claim(flow_token, claimer))
            )

    def record_stripe_event(
        self,
        event_id: str,
        event_type: str,
        payload: str | None = None,
        customer_id: str | None = None,
        claim: str | None = None,
    ) -> bool:
        """Records a verified event before it is acknowledged, held under `claim` by this
        process; False for a re-delivery."""
        now = time.time()
        customer = (
            self.customer_columns(stripe_events, event_id, customer_id) if customer_id else {}
        )
        bound_to = binding(event_id, customer.get("customer_key"))
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    stripe_events.insert().values(
                        event_id=event_id,
                        event_type=event_type,
                        received_at=now,
                        payload=self.seal(stripe_events, "payload", bound_to, payload),
                        claimed_at=now,
                        claim_token=claim,
                        **customer,
                    )
                )
        except IntegrityError:
            return False
        return True

    def mark_stripe_processed(self, event_id: str, outcome: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                stripe_events.update()
                .where(stripe_events.c.event_id == event_id)
                .values(processed_at=time.time(), outcome=outcome)
            )

    def stripe_outcome(self, event_id: str) -> str | None:
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
            f"{self.keys.pseudonym(customer_id)}/{order_id}",
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

    def claim_abandoned(
        self, table: sa.Table, key: str, lease_seconds: float, limit: int = 100
    ) -> list[tuple[str, str, str]]:
        """(stored id, payload, claim) of recorded work nobody finished and nobody holds.

        Work is held from when it is recorded, and its holder renews the lease while the
        work runs (`renew_claim`); after `lease_seconds` without a renewal (the process
        crashed or was killed) the row is free. Each row is taken with a conditional update
        under a new claim token, so of several replicas sweeping at once exactly one gets it.
        """
        now = time.time()
        id_column = table.c[key]
        with self.engine.connect() as connection:
            candidates = connection.execute(
                sa.select(id_column, table.c.customer_key, table.c.payload, table.c.claimed_at)
                .where(table.c.processed_at.is_(None))
                .where(table.c.payload.is_not(None))
                .where(table.c.claimed_at < now - lease_seconds)
                .where(table.c.received_at > now - REPLAY_HORIZON_SECONDS)
                .order_by(table.c.received_at)
                .limit(limit)
            ).all()
        taken = []
        for row_id, customer_key, payload, claimed_at in candidates:
            claim = new_claim()
            with self.engine.begin() as connection:
                won = connection.execute(
                    table.update()
                    .where(id_column == row_id)
                    .where(table.c.processed_at.is_(None))
                    .where(table.c.claimed_at == claimed_at)
                    .values(claimed_at=now, claim_token=claim)
                ).rowcount
            bound_to = binding(str(row_id), customer_key)
            opened = self._replayable(table, bound_to, str(row_id), payload, claim) if won else None
            if opened is not None:
                taken.append((str(row_id), opened, claim))
        return taken

    def _replayable(
        self, table: sa.Table, bound_to: str, stored_id: str, payload: str, claim: str
    ) -> str | None:
        """The payload of work just claimed, or None when it does not open: such a row
        (altered, or moved from another) is finished as 'unreadable', logged and counted
        once, and left for an operator; it does not hold up the others."""
        try:
            return str(self.open(table, "payload", bound_to, payload))
        except UnreadableError as error:
            logger.error("%s %s set aside as unreadable: %s", table.name, stored_id, error)
            UNREADABLE_ROWS.labels(table.name).inc()
            with self.engine.begin() as connection:
                connection.execute(
                    table.update()
                    .where(table.c[ROW_IDS[table.name]] == stored_id)
                    .where(table.c.claim_token == claim)
                    .values(processed_at=time.time(), outcome="unreadable")
                )
            return None

    def _work_row(self, table: sa.Table, work_id: str) -> Any:
        """The WHERE clause of one recorded message or Stripe event, by its real id."""
        if table is inbound_messages:
            return inbound_messages.c.message_id == digest(work_id)
        return stripe_events.c.event_id == work_id

    def renew_claim(self, table: sa.Table, work_id: str, claim: str) -> bool:
        """Renews the lease on unfinished work held under `claim`; False when it is not held
        under it any more (another process took it over, or it is finished)."""
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                table.update()
                .where(self._work_row(table, work_id))
                .where(table.c.claim_token == claim)
                .where(table.c.processed_at.is_(None))
                .values(claimed_at=time.time())
            ).rowcount
        return renewed == 1

    def holds(self, table: sa.Table, work_id: str, claim: str) -> bool:
        """True while the work is unfinished and held under `claim` (checked before a
        replay runs: another process may have finished it or taken it over meanwhile)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(table.c.claim_token)
                .where(self._work_row(table, work_id))
                .where(table.c.claim_token == claim)
                .where(table.c.processed_at.is_(None))
            ).first()
        return row is not None

    def health(self) -> dict[str, float | int]:
        """Backlog figures for the health route; raises when the database is unreachable."""
        now = time.time()
        figures: dict[str, float | int] = {}
        with self.engine.connect() as connection:
            for name, table in (("messages", inbound_messages), ("stripe_events", stripe_events)):
                pending = table.c.processed_at.is_(None)
                count, oldest = connection.execute(
                    sa.select(sa.func.count(), sa.func.min(table.c.received_at)).where(pending)
                ).one()
                figures[f"pending_{name}"] = int(count)
                figures[f"oldest_pending_{name}_seconds"] = round(now - oldest, 1) if oldest else 0
            for status in ("pending", "dead", "undeliverable"):
                figures[f"{status}_notifications"] = int(
                    connection.execute(
                        sa.select(sa.func.count()).where(outbox.c.status == status)
                    ).scalar_one()
                )
        return figures

    def enqueue_notification(self, dedup_key: str, customer_key: str, body: str) -> bool:
        """Queues a notification; False when one with this key was queued before."""
        now = time.time()
        customer = self.customer_columns(outbox, dedup_key, customer_key)
        bound_to = binding(dedup_key, customer["customer_key"])
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    outbox.insert().values(
                        dedup_key=dedup_key,
                        **customer,
                        body=self.seal(outbox, "body", bound_to, body),
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    def claim_due_notifications(self, lease_seconds: float, limit: int = 20) -> list[OutboxEntry]:
        """Pending notifications whose time has come, each taken under a new claim token and
        pushed `lease_seconds` ahead by a conditional update, so that one worker (of several
        replicas) takes it."""
        now = time.time()
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(outbox)
                .where(outbox.c.status == "pending")
                .where(outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at)
                .limit(limit)
            ).all()
        taken = []
        for row in rows:
            claim = new_claim()
            with self.engine.begin() as connection:
                won = connection.execute(
                    outbox.update()
                    .where(outbox.c.id == row.id)
                    .where(outbox.c.status == "pending")
                    .where(outbox.c.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=now + lease_seconds, claim_token=claim)
                ).rowcount
            entry = self._sendable(row, claim) if won else None
            if entry is not None:
                taken.append(entry)
        return taken

    def _sendable(self, row: Any, claim: str) -> OutboxEntry | None:
        """The entry of a claimed row, or None when its sealed values do not open: such a
        row (altered, or moved from another) is never sent, but made a dead letter."""
        try:
            return self._entry(row, claim)
        except UnreadableError as error:
            logger.error("notification=%s cannot be opened; now a dead letter: %s", row.id, error)
            UNREADABLE_ROWS.labels(outbox.name).inc()
            with self.engine.begin() as connection:
                connection.execute(
                    outbox.update()
                    .where(outbox.c.id == row.id)
                    .values(status="dead", last_error=f"unreadable: {error}"[:255])
                )
            return None

    def _claimed(self, entry_id: int, claim: str) -> Any:
        """An outbox update limited to a pending entry still held under `claim`."""
        return (
            outbox.update()
            .where(outbox.c.id == entry_id)
            .where(outbox.c.status == "pending")
            .where(outbox.c.claim_token == claim)
        )

    def renew_notification(self, entry_id: int, claim: str, lease_seconds: float) -> bool:
        """Extends a live claim; False when its lease ran out or another worker holds the
        entry now. Called right before a send and while it runs: a worker whose lease ran
        out must not send, since another one may already be sending."""
        now = time.time()
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                self._claimed(entry_id, claim)
                .where(outbox.c.next_attempt_at > now)
                .values(next_attempt_at=now + lease_seconds)
            ).rowcount
        return renewed == 1

    def notification_sent(self, entry_id: int, claim: str, message_id: str | None) -> bool:
        """Marks a claimed entry sent; False (nothing changed) when the claim was lost."""
        with self.engine.begin() as connection:
            changed: int = connection.execute(
                self._claimed(entry_id, claim).values(
                    status="sent",
                    sent_at=time.time(),
                    message_id=digest(message_id) if message_id else None,
                )
            ).rowcount
        return changed == 1

    def notification_failed(
        self, entry_id: int, claim: str, error: str, retry_at: float | None
    ) -> bool:
        """Counts a failed attempt; `retry_at` None makes the entry a dead letter. False
        (nothing changed) when the claim was lost."""
        with self.engine.begin() as connection:
            changed: int = connection.execute(
                self._claimed(entry_id, claim).values(
                    attempts=outbox.c.attempts + 1,
                    last_error=error[:255],
                    status="pending" if retry_at is not None else "dead",
                    next_attempt_at=retry_at if retry_at is not None else time.time(),
                )
            ).rowcount
        return changed == 1

    def notification_undeliverable(self, entry_id: int, claim: str, reason: str) -> bool:
        """WhatsApp's rules forbid sending the entry at all: it leaves the queue as
        'undeliverable' (not 'sent'). False (nothing changed) when the claim was lost."""
        with self.engine.begin() as connection:
            changed: int = connection.execute(
                self._claimed(entry_id, claim).values(
                    status="undeliverable",
                    attempts=outbox.c.attempts + 1,
                    last_error=reason[:255],
                )
            ).rowcount
        return changed == 1

    def notifications(self, status: str | None = None) -> list[OutboxEntry]:
        query = sa.select(outbox).order_by(outbox.c.id)
        if status:
            query = query.where(outbox.c.status == status)
        with self.engine.connect() as connection:
            return [self._listed(row) for row in connection.execute(query).all()]

    def _listed(self, row: Any) -> OutboxEntry:
        """An entry for the operator's listing, also when its sealed values do not open."""
        try:
            return self._entry(row)
        except UnreadableError:
            return OutboxEntry(
                row.id,
                "",
                "",
                row.status,
                row.attempts,
                row.created_at,
                row.last_error,
                unreadable=True,
            )

    def retry_notifications(self, ids: list[int] | None) -> int:
        """Dead letters (all, or these ids) back to pending, now; returns how many."""
        query = outbox.update().where(outbox.c.status == "dead")
        if ids is not None:
            query = query.where(outbox.c.id.in_(ids))
        with self.engine.begin() as connection:
            changed: int = connection.execute(
                query.values(status="pending", next_attempt_at=time.time(), attempts=0)
            ).rowcount
        return changed

    def _entry(self, row: Any, claim: str | None = None) -> OutboxEntry:
        bound_to = row_identity(outbox, row._mapping)
        return OutboxEntry(
            row.id,
            str(self.open(outbox, "customer_sealed", bound_to, row.customer_sealed)),
            str(self.open(outbox, "body", bound_to, row.body)),
            row.status,
            row.attempts,
            row.created_at,
            row.last_error,
            claim,
        )
