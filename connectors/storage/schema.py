"""The connector's own tables, next to Rasa's tracker store (same DATABASE_URL).

- inbound messages: Meta re-delivers; the primary key makes a message id count once,
  also across restarts;
- outbound messages: what we sent, and the delivery statuses Meta reports for it;
- customers: when each last wrote, for WhatsApp's 24-hour window;
- flow token claims: one order per WhatsApp Flow, whichever path its completion takes;
- Stripe events: each event id once (Stripe delivers at least once, for up to 3 days);
- fulfilments: one confirmation per Checkout Session, however many events say it was paid;
- order payments: the first Checkout Session paid for an order, the one that confirms it;
- the notification outbox: order notifications, kept until Meta has accepted them;
- hand-overs: customers handed over to a person, each under an opaque reference for staff;
- checkout reminders: one per customer and order, due some minutes before its link expires;
- paid orders: the index the shop ships and refunds from (`make orders`, the orders API),
  written from verified Stripe events only.

Nothing here names a customer in clear: `customer_pseudonym` columns hold a keyed hash of
the customer's id (connectors/storage/keys.py), `customer_sealed` the id itself sealed with
AES-GCM, and bodies and payloads are sealed too (connectors/storage/sealing.py). WhatsApp
message ids (base64 that contains the customer's number) and Flow tokens are kept as
SHA-256 digests. Schema changes go through connectors/storage/migrations.py.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

inbound_messages = sa.Table(
    "wa_inbound_messages",
    metadata,
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
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
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
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
    sa.Column("customer_pseudonym", sa.String(255), primary_key=True),
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
    sa.Column("customer_pseudonym", sa.String(255), nullable=True, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),
    # An expiry whose session has a recovery URL: that session (Stripe's id) and its order,
    # so a paid recovered copy that lost our metadata still finds its customer and order.
    sa.Column("checkout_session_id", sa.String(255), nullable=True, index=True),
    sa.Column("order_sealed", sa.Text, nullable=True),
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
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
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

handovers = sa.Table(
    "handovers",
    metadata,
    # The reference staff reply with (`make chat ARGS="reply H-…"`): random, not derived from
    # the customer, so it tells nobody who they are.
    sa.Column("ref", sa.String(16), primary_key=True),
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),  # asked | complaint | not_understood
    sa.Column("status", sa.String(16), nullable=False),  # open | ended
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("staff_replied_at", sa.Float, nullable=True),  # the latest reply
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("ended_by", sa.String(16), nullable=True),  # staff | timeout
    # Handing the conversation back (the bot's turn that tells the customer): who claimed it
    # when, and when it was done.
    sa.Column("hand_back_claimed_at", sa.Float, nullable=True),
    sa.Column("handed_back_at", sa.Float, nullable=True),
    # One open hand-over per customer, whichever replica opens it.
    sa.Index(
        "ux_handovers_open_customer",
        "customer_pseudonym",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)


checkout_reminders = sa.Table(
    "checkout_reminders",
    metadata,
    # Random, not derived from the customer or the order (the row's natural key).
    sa.Column("reminder_id", sa.String(32), primary_key=True),
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("checkout_session_id", sa.String(255), nullable=False),  # the link reminded of
    sa.Column("remind_at", sa.Float, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=True),  # the sweep running its turn, since
    sa.Column("done_at", sa.Float, nullable=True),  # its turn ran (sent or silent)
    # One reminder per customer and order: a newer link of the order moves it.
    sa.UniqueConstraint("customer_pseudonym", "order_id", name="ux_checkout_reminders_order"),
)

paid_orders = sa.Table(
    "paid_orders",
    metadata,
    # Order ids are random (40 bits): one per row; the rare id paid by a second customer is
    # not indexed (connectors/storage/paid_orders.py logs it for a person).
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("customer_pseudonym", sa.String(255), nullable=False, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("checkout_session_id", sa.String(255), nullable=False),  # the one that paid it
    # None for a subscription (its invoices are paid apart) or a free order (nothing charged)
    sa.Column("payment_intent", sa.String(255), nullable=True, index=True),
    sa.Column("subscription", sa.String(255), nullable=True),  # the session started one
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),  # charged, minor units
    sa.Column("amount_refunded", sa.Integer, nullable=False, default=0),  # cumulative
    sa.Column("fulfilment", sa.String(16), nullable=False),  # shop_contract.fulfilment
    # Set once the conversation shows the order paid by this session (the bot confirmed the
    # payment): the shop ships and refunds only confirmed orders.
    sa.Column("confirmed", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("carrier", sa.String(64), nullable=True),
    sa.Column("tracking_url", sa.Text, nullable=True),  # sealed: a parcel's page names places
    sa.Column("paid_at", sa.Float, nullable=False, index=True),
    sa.Column("shipped_at", sa.Float, nullable=True),
    sa.Column("delivered_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Raised by every move that changes the row: a shipment's outbox key has it, so a link
    # corrected back to an earlier one (A, B, A) is told again, and a repeat is not.
    sa.Column("revision", sa.Integer, nullable=False, default=0, server_default="0"),
)

# Each payment's cumulative refund as Stripe's `charge.refunded` events report it (the
# highest seen), whether or not its order is indexed yet: a refund reported before the
# payment's own event is applied when the order is indexed. No customer data.
refund_totals = sa.Table(
    "refund_totals",
    metadata,
    sa.Column("payment_intent", sa.String(255), primary_key=True),
    sa.Column("amount_refunded", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False, index=True),
)

# The refunds operators asked for, one per order and Idempotency-Key, written before Stripe is
# called: a retry with the key replays the amount first chosen (for "all that is left" too),
# never what is left by then. No customer data: an order id, a key, an amount.
refund_requests = sa.Table(
    "refund_requests",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("request_key", sa.String(64), primary_key=True),
    sa.Column("amount", sa.Integer, nullable=False),  # minor units
    sa.Column("refund_id", sa.String(255), nullable=True),  # Stripe's, once it answered
    # Stripe said no (nothing refunded): the request does not block another key's refund.
    sa.Column("refused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    # The order's id while Stripe has neither answered nor refused the request (NULL after):
    # unique, so at most one refund of an order has an unknown outcome, whatever runs at once.
    sa.Column("pending_order_id", sa.String(64), nullable=True, index=True, unique=True),
    # When the request was last sent (its retries too): it blocks other keys for a day after.
    sa.Column("attempted_at", sa.Float, nullable=True),
)

# Every table that holds a customer's data: its pseudonym column is `customer_pseudonym`,
# and these columns are sealed (AES-GCM, with the table, column and row as associated data).
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "wa_inbound_messages": ("customer_sealed", "payload"),
    "wa_outbound_messages": ("customer_sealed", "body"),
    "wa_customers": ("customer_sealed",),
    "stripe_events": ("customer_sealed", "payload", "order_sealed"),
    "notification_outbox": ("customer_sealed", "body"),
    "handovers": ("customer_sealed",),
    "checkout_reminders": ("customer_sealed",),
    "paid_orders": ("customer_sealed", "tracking_url"),
}
# The column that names a row of each of those tables: a natural key, known before the row is
# inserted and never updated (a customer's pseudonym changes only when re-encryption
# rewrites the whole row under a new key).
ROW_IDS: dict[str, str] = {
    "wa_inbound_messages": "message_id",  # digest of Meta's message id
    "wa_outbound_messages": "message_id",
    "wa_customers": "customer_pseudonym",
    "stripe_events": "event_id",
    "notification_outbox": "dedup_key",
    "handovers": "ref",
    "checkout_reminders": "reminder_id",
    "paid_orders": "order_id",
}
CUSTOMER_TABLES = {
    table.name: table for table in metadata.sorted_tables if table.name in SEALED_COLUMNS
}
