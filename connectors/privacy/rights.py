"""The customer's rights over their data: export it, erase it; and the shop's purge.

All three work on one database (DATABASE_URL): Rasa's tracker events and the connector's
tables, found by the customer's pseudonym under every key on the ring. What Stripe holds
(its Customer, payments) stays with Stripe; the shop erases it there.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from connectors.privacy.reencrypt import stale
from connectors.storage.checks import StoredDataError
from connectors.storage.keys import PSEUDONYM_PREFIX
from connectors.storage.schema import (
    CUSTOMER_TABLES,
    SEALED_COLUMNS,
    checkout_reminders,
    customers,
    flow_token_claims,
    handovers,
    inbound_messages,
    outbound_messages,
    outbox,
    paid_orders,
    refund_requests,
    refund_totals,
    stripe_events,
    stripe_fulfilments,
)
from connectors.storage.sealing import row_identity
from connectors.storage.store import ConnectorStore
from connectors.storage.tracker_events import EVENTS, open_event
from connectors.storage.wipe import scrub
from shop_contract.stripe_metadata import STRIPE_CUSTOMER_SLOT

# For each table: the column saying how old a row is (purge and retention go by it).
AGE_COLUMNS = {
    inbound_messages: "received_at",
    outbound_messages: "sent_at",
    customers: "last_inbound_at",
    flow_token_claims: "claimed_at",
    stripe_events: "received_at",
    stripe_fulfilments: "claimed_at",
    outbox: "created_at",
    handovers: "opened_at",
    checkout_reminders: "created_at",
    paid_orders: "paid_at",
    refund_requests: "created_at",
    refund_totals: "updated_at",
}
# Sealed columns that hold JSON documents (the others hold plain text).
JSON_COLUMNS = {
    ("wa_inbound_messages", "payload"),
    ("stripe_events", "payload"),
    ("notification_outbox", "body"),
}


def conversation_rows(
    connection: sa.Connection, store: ConnectorStore, customer_id: str
) -> list[sa.Row[Any]]:
    """The customer's conversation events, sealed as stored (sender pseudonym and data),
    oldest first."""
    pseudonyms = store.keys.pseudonyms(customer_id)
    return list(
        connection.execute(
            sa.select(EVENTS.c.sender_id, EVENTS.c.data)
            .where(EVENTS.c.sender_id.in_(pseudonyms))
            .order_by(EVENTS.c.id)
        ).all()
    )


def export_customer(store: ConnectorStore, customer_id: str) -> dict[str, Any]:
    """Everything held about one customer, opened, as JSON-ready data."""
    with store.engine.connect() as connection:
        rows = conversation_rows(connection, store, customer_id)
        conversation = [open_event(store.keys, row.sender_id, row.data)[1] for row in rows]
        tables = {
            name: [
                _opened(store, table, row._asdict())
                for row in connection.execute(
                    sa.select(table).where(store.sealer.owned_by(table, customer_id))
                ).all()
            ]
            for name, table in CUSTOMER_TABLES.items()
        }
    return {
        "customer": customer_id,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conversation_events": conversation,
        **tables,
    }


def _opened(store: ConnectorStore, table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    bound_to = row_identity(table, row)
    row.pop("customer_pseudonym", None)
    # Opened though not shown: a row re-filed under this customer's pseudonym does not open.
    store.sealer.open(table, "customer_sealed", bound_to, row.pop("customer_sealed", None))
    for column in SEALED_COLUMNS[table.name]:
        if column in row and row[column] is not None:
            text = store.sealer.open(table, column, bound_to, row[column])
            row[column] = (
                json.loads(text) if (table.name, column) in JSON_COLUMNS and text else text
            )
    return row


KEPT_BY_STRIPE = (
    "Kept by Stripe, not erased here: the customer's payments, their Stripe Customer and its "
    "subscriptions, the shop's payment records; their Checkout Sessions, payments and "
    "subscriptions carry the customer's WhatsApp number in their metadata "
    "(whatsapp_user_id). Erasing here does not cancel a "
    "subscription: if the customer wants it ended, cancel it at Stripe. To have Stripe's "
    "records removed, delete the Customer in the Stripe Dashboard (Customers) or with "
    "DELETE /v1/customers/{id}, which also cancels its subscriptions at once; Stripe keeps "
    "the payments the law requires it to."
)


CUSTOMER_SLOTS = (STRIPE_CUSTOMER_SLOT, "order_customer")  # and each `orders` record's


def stripe_customers_of(store: ConnectorStore, customer_id: str) -> tuple[list[str], int]:
    """The Stripe Customers the customer's conversation remembered paying as, oldest first,
    and how many of its rows did not open (skipped): once the conversation is erased,
    nothing here links them to this customer any more, so the shop needs them to erase the
    customer at Stripe too. Reads only the conversation's rows, and a row that does not open
    is counted, never an error: this lookup must not stop an erasure."""
    found: list[str] = []
    skipped = 0
    with store.engine.connect() as connection:
        rows = conversation_rows(connection, store, customer_id)
    for row in rows:
        try:
            _, event = open_event(store.keys, row.sender_id, row.data)
        except Exception:  # any row that does not read: tampered, bad JSON, null data…
            skipped += 1
            continue
        for value in _customer_values(event):
            if value not in found:
                found.append(value)
    return found, skipped


def _customer_values(event: Any) -> list[str]:
    """The Stripe Customer ids a conversation event sets (a slot or the `orders` records)."""
    if not isinstance(event, dict) or event.get("event") != "slot":
        return []
    name, value = event.get("name"), event.get("value")
    if name == "orders" and isinstance(value, dict):
        values = [r.get("order_customer") for r in value.values() if isinstance(r, dict)]
    else:
        values = [value] if name in CUSTOMER_SLOTS else []
    return [v for v in values if isinstance(v, str) and v.startswith("cus_")]


def erase_customer(store: ConnectorStore, customer_id: str) -> dict[str, int]:
    """Deletes the customer's conversation and every row of theirs; returns counts."""
    pseudonyms = store.keys.pseudonyms(customer_id)
    counts: dict[str, int] = {}
    with store.engine.begin() as connection:
        paid_events = sa.select(stripe_events.c.event_id).where(
            store.sealer.owned_by(stripe_events, customer_id)
        )
        counts["stripe_fulfilments"] = connection.execute(
            stripe_fulfilments.delete().where(stripe_fulfilments.c.event_id.in_(paid_events))
        ).rowcount
        # Refunds of the customer's orders name no customer: found through their paid
        # orders, so before those go.
        theirs = store.sealer.owned_by(paid_orders, customer_id)
        counts["refund_requests"] = connection.execute(
            refund_requests.delete().where(
                refund_requests.c.order_id.in_(sa.select(paid_orders.c.order_id).where(theirs))
            )
        ).rowcount
        counts["refund_totals"] = connection.execute(
            refund_totals.delete().where(
                refund_totals.c.payment_intent.in_(
                    sa.select(paid_orders.c.payment_intent).where(theirs)
                )
            )
        ).rowcount
        for name, table in CUSTOMER_TABLES.items():
            counts[name] = connection.execute(
                table.delete().where(store.sealer.owned_by(table, customer_id))
            ).rowcount
        if sa.inspect(connection).has_table("events"):
            counts["events"] = connection.execute(
                EVENTS.delete().where(EVENTS.c.sender_id.in_(pseudonyms))
            ).rowcount
    scrub(store.engine)
    return counts


def purge_older_than(store: ConnectorStore, seconds: float) -> dict[str, int]:
    """Deletes conversations idle for `seconds` and connector rows that old (queued
    notifications and open hand-overs excepted); returns counts."""
    cutoff = time.time() - seconds
    counts: dict[str, int] = {}
    with store.engine.begin() as connection:
        if sa.inspect(connection).has_table("events"):
            rotating = connection.execute(
                sa.select(EVENTS.c.id)
                .where(stale(EVENTS.c.sender_id, store.keys, PSEUDONYM_PREFIX))
                .limit(1)
            ).first()
            if rotating is not None:
                # A conversation is then filed under two pseudonyms; judged apart, its
                # older half would look idle and be cut off.
                raise StoredDataError(
                    "purge: some conversations are still under an older key; run "
                    "`make privacy ARGS=reencrypt` first"
                )
            idle = (
                sa.select(EVENTS.c.sender_id)
                .group_by(EVENTS.c.sender_id)
                .having(sa.func.max(EVENTS.c.timestamp) < cutoff)
            )
            counts["events"] = connection.execute(
                EVENTS.delete().where(EVENTS.c.sender_id.in_(idle))
            ).rowcount
        for table, age in AGE_COLUMNS.items():
            query = table.delete().where(table.c[age] < cutoff)
            if table is outbox:
                query = query.where(outbox.c.status != "pending")
            if table is handovers:
                query = query.where(handovers.c.status != "open")
            counts[table.name] = connection.execute(query).rowcount
    scrub(store.engine)
    return counts


def expire_raw_bodies(store: ConnectorStore, retention_seconds: float) -> dict[str, int]:
    """Drops webhook payloads and message bodies older than the retention period.

    Dedup needs only the ids and replay only the last day, so the bodies go while the rows
    stay (until a purge). Sent or dead notifications go as a whole, and so do hand-overs
    handed back that long ago (the messages forwarded in them were notifications), and
    reminders whose turn ran that long ago.
    """
    cutoff = time.time() - retention_seconds
    counts: dict[str, int] = {}
    with store.engine.begin() as connection:
        for table, column in (
            (inbound_messages, "payload"),
            (stripe_events, "payload"),
            (outbound_messages, "body"),
        ):
            age = table.c[AGE_COLUMNS[table]]
            counts[table.name] = connection.execute(
                table.update()
                .where(age < cutoff)
                .where(table.c[column].is_not(None))
                .values({column: None})
            ).rowcount
        counts[outbox.name] = connection.execute(
            outbox.delete().where(outbox.c.created_at < cutoff).where(outbox.c.status != "pending")
        ).rowcount
        counts[handovers.name] = connection.execute(
            handovers.delete().where(handovers.c.handed_back_at < cutoff)
        ).rowcount
        counts[checkout_reminders.name] = connection.execute(
            checkout_reminders.delete().where(checkout_reminders.c.done_at < cutoff)
        ).rowcount
    return counts
