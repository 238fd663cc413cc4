"""Versioned schema changes for the connector's tables; safe to run twice, and by several
replicas at once. `python -m scripts.migrate` (or `make migrate`) runs them; so does
every start of the connector.

Each step is idempotent (it checks what exists before changing it) and is recorded in
`connector_schema_versions`; a step already recorded is skipped.

A new database (none of our tables, nothing recorded) gets today's tables in one step and
every version recorded with it: the first step already creates each table in its current
shape, and every later step finds nothing to change there, so running them one by one
(~0.4 s on PostgreSQL, most of it inspecting) gives the same schema
(tests/storage/test_migrations.py compares the two).
"""

from __future__ import annotations

import fcntl
import logging
import re
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import metadata, refund_requests
from connectors.storage.sealing import digest

logger = logging.getLogger(__name__)

versions = sa.Table(
    "connector_schema_versions",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def _create_tables(connection: Connection) -> None:
    """Creates the tables that do not exist yet, in their current shape: the steps after
    this one check what they find before changing it."""
    metadata.create_all(connection, checkfirst=True)


def _add_replay_columns(connection: Connection) -> None:
    inspector = sa.inspect(connection)
    for table in ("wa_inbound_messages", "stripe_events"):
        present = {column["name"] for column in inspector.get_columns(table)}
        for name, kind in (("payload", "TEXT"), ("claimed_at", "FLOAT")):
            if name not in present:
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _add_privacy_columns(connection: Connection) -> None:
    """Pseudonymised customers with their sealed id; flow tokens kept only as digests.

    Rows written before this step still hold ids and bodies in clear; start-up refuses them
    until `make privacy ARGS=reencrypt` has sealed them (it needs the key, this step not).
    """
    inspector = sa.inspect(connection)
    wanted = {
        "wa_inbound_messages": [("customer_sealed", "TEXT")],
        "wa_outbound_messages": [("customer_sealed", "TEXT")],
        "wa_customers": [("customer_sealed", "TEXT")],
        "notification_outbox": [("customer_sealed", "TEXT")],
        "stripe_events": [("customer_key", "VARCHAR(255)"), ("customer_sealed", "TEXT")],
    }
    for table, columns in wanted.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        if "customer_pseudonym" in present:  # created by step 1 or 3 in today's shape,
            present.add("customer_key")  # where the column has its step-10 name
        for name, kind in columns:
            if name not in present:
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    _digest_column(connection, "wa_flow_token_claims", "flow_token")


def _digest_column(connection: Connection, table: str, column: str) -> None:
    """Replaces the values of `table.column` not yet stored as SHA-256 hex by their digest."""
    target = sa.table(table, sa.column(column))
    values = [row[0] for row in connection.execute(sa.select(target.c[column]))]
    for value in values:
        if value is None or re.fullmatch(r"[0-9a-f]{64}", value):
            continue
        connection.execute(
            target.update().where(target.c[column] == value).values({column: digest(value)})
        )


def _digest_message_ids(connection: Connection) -> None:
    """WhatsApp message ids are base64 that holds the customer's number: keep digests."""
    for table in ("wa_inbound_messages", "wa_outbound_messages", "notification_outbox"):
        _digest_column(connection, table, "message_id")


def _add_claim_tokens(connection: Connection) -> None:
    """Who holds recorded work or an outbox entry, so only the holder renews or finishes it."""
    inspector = sa.inspect(connection)
    for table in ("wa_inbound_messages", "stripe_events", "notification_outbox"):
        present = {column["name"] for column in inspector.get_columns(table)}
        if "claim_token" not in present:
            connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN claim_token VARCHAR(32)")


def _add_flow_claimers(connection: Connection) -> None:
    """Who holds a flow token's claim and whether its turn finished. Claims from before
    were taken as the turn started and never looked at again: they count as finished."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("wa_flow_token_claims")}
    for name, kind in (("claimer", "VARCHAR(64)"), ("done_at", "FLOAT")):
        if name not in present:
            connection.exec_driver_sql(f"ALTER TABLE wa_flow_token_claims ADD COLUMN {name} {kind}")
    connection.exec_driver_sql(
        "UPDATE wa_flow_token_claims SET done_at = claimed_at "
        "WHERE done_at IS NULL AND claimer IS NULL"
    )


def _add_message_outcome(connection: Connection) -> None:
    """An outcome on recorded messages: 'unreadable' sets a row aside from replays."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("wa_inbound_messages")}
    if "outcome" not in present:
        connection.exec_driver_sql("ALTER TABLE wa_inbound_messages ADD COLUMN outcome VARCHAR(32)")


def _add_recovery_columns(connection: Connection) -> None:
    """An expired session with a recovery URL is recorded with its session id and sealed
    order id: Stripe's recovered copy names that session in `recovered_from`."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("stripe_events")}
    if "checkout_session_id" not in present:
        connection.exec_driver_sql(
            "ALTER TABLE stripe_events ADD COLUMN checkout_session_id VARCHAR(255)"
        )
    if "order_sealed" not in present:
        connection.exec_driver_sql("ALTER TABLE stripe_events ADD COLUMN order_sealed TEXT")
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_stripe_events_checkout_session_id "
        "ON stripe_events (checkout_session_id)"
    )


# The tables whose pseudonym column was called `customer_key`, and whether it is indexed.
PSEUDONYM_COLUMNS = {
    "wa_inbound_messages": True,
    "wa_outbound_messages": True,
    "wa_customers": False,  # the primary key
    "stripe_events": True,
    "notification_outbox": True,
}


def _rename_customer_key(connection: Connection) -> None:
    """`customer_key` held the customer's pseudonym, while parameters of that name took the
    real id: the column is now `customer_pseudonym`. Its values, and what sealed values are
    bound to, stay as they are. Replicas of the release before this step write to the old
    name, so all of them are replaced before it runs (`make migrate`).

    The index follows the new name (SQLAlchemy's `ix_<table>_<column>`); stripe_events gets
    one also where step 4 added the column without it."""
    inspector = sa.inspect(connection)
    for table, indexed in PSEUDONYM_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        if "customer_key" in present and "customer_pseudonym" not in present:
            connection.exec_driver_sql(
                f"ALTER TABLE {table} RENAME COLUMN customer_key TO customer_pseudonym"
            )
        if indexed:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS ix_{table}_customer_key")
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS ix_{table}_customer_pseudonym "
                f"ON {table} (customer_pseudonym)"
            )


def _add_pending_refunds(connection: Connection) -> None:
    """A refund request names its order in `pending_order_id` while its outcome is unknown,
    under a unique index: two requests of one order at once can no longer both pass the
    "no other refund in flight" check. Each order's newest unknown request gets the marker:
    the check before this step ignored those over a day old, so a newer one may have been
    made after them."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("refund_requests")}
    if "pending_order_id" not in present:
        connection.exec_driver_sql(
            "ALTER TABLE refund_requests ADD COLUMN pending_order_id VARCHAR(64)"
        )
        unknown = connection.execute(
            sa.select(refund_requests.c.order_id, refund_requests.c.request_key)
            .where(refund_requests.c.refund_id.is_(None))
            .where(refund_requests.c.refused.is_(False))
            .order_by(refund_requests.c.created_at, refund_requests.c.request_key)
        ).all()
        newest = {row.order_id: row.request_key for row in unknown}  # the last one wins
        for order_id, request_key in newest.items():
            connection.execute(
                refund_requests.update()
                .where(refund_requests.c.order_id == order_id)
                .where(refund_requests.c.request_key == request_key)
                .values(pending_order_id=order_id)
            )
    connection.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_refund_requests_pending_order_id "
        "ON refund_requests (pending_order_id)"
    )


def _add_refund_attempts(connection: Connection) -> None:
    """`attempted_at`: when a refund request was last sent (a retry counts), from which it
    blocks the order's other keys for a day. Rows from before were last sent when made."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("refund_requests")}
    if "attempted_at" not in present:
        connection.exec_driver_sql("ALTER TABLE refund_requests ADD COLUMN attempted_at FLOAT")
    connection.exec_driver_sql(
        "UPDATE refund_requests SET attempted_at = created_at WHERE attempted_at IS NULL"
    )


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "connector tables", _create_tables),
    (2, "payloads and claims for replay after a crash", _add_replay_columns),
    (3, "notification outbox", _create_tables),
    (4, "pseudonymised customers, sealed bodies, flow token digests", _add_privacy_columns),
    (5, "WhatsApp message ids kept as digests", _digest_message_ids),
    (6, "claim tokens on recorded work and outbox entries", _add_claim_tokens),
    (7, "the first Checkout Session paid for each order", _create_tables),
    (8, "flow token claims name their claimer and when its turn finished", _add_flow_claimers),
    (9, "an outcome on recorded messages (unreadable rows set aside)", _add_message_outcome),
    (10, "customer_key columns renamed customer_pseudonym", _rename_customer_key),
    (11, "hand-overs to a person", _create_tables),
    (12, "expired sessions with recovery name their session and order", _add_recovery_columns),
    (13, "checkout reminders before a payment link expires", _create_tables),
    (
        14,
        "the index of paid orders the shop ships and refunds, and refund requests",
        _create_tables,
    ),
    (15, "at most one refund of an order with an unknown outcome", _add_pending_refunds),
    (16, "refund requests record when they were last sent", _add_refund_attempts),
]


MIGRATION_LOCK_ID = 7_263_104_551  # a PostgreSQL advisory lock: one replica migrates at once


def migrate(engine: Engine) -> list[int]:
    """Applies the steps not yet recorded; returns the versions applied now. One process
    migrates a database at once: others wait, then find the steps recorded."""
    if engine.dialect.name == "sqlite":
        return _migrate_sqlite(engine)
    if engine.dialect.name != "postgresql":
        return _migrate(engine)
    with engine.connect() as holder:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
        try:
            return _migrate(engine)
        finally:
            holder.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")


def _migrate_sqlite(engine: Engine) -> list[int]:
    """SQLite has no advisory lock, and its DDL is not checked under one transaction with
    the test before it: processes starting at once on a new file each created the tables
    and all but one failed. A lock on a file beside the database stands in for the
    PostgreSQL one."""
    database = engine.url.database
    if not database or database == ":memory:":
        return _migrate(engine)
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _migrate(engine)


def _migrate(engine: Engine, new_in_one_step: bool = True) -> list[int]:
    versions.create(engine, checkfirst=True)
    if new_in_one_step:
        applied = _create_new(engine)
        if applied:
            return applied
    applied_now = []
    for version, description, step in MIGRATIONS:
        with engine.begin() as connection:
            done = connection.execute(
                sa.select(versions.c.version).where(versions.c.version == version)
            ).first()
            if done:
                continue
            step(connection)
        try:
            with engine.begin() as connection:
                connection.execute(
                    versions.insert().values(
                        version=version, description=description, applied_at=time.time()
                    )
                )
        except IntegrityError:
            continue  # another replica recorded it first; the step is idempotent
        applied_now.append(version)
        logger.info("schema migration %s applied: %s", version, description)
    return applied_now


def _create_new(engine: Engine) -> list[int]:
    """On a new database, today's tables with every version recorded (returned); [] when
    the database is not new, or another process recorded a version first."""
    try:
        with engine.begin() as connection:
            recorded = connection.execute(sa.select(versions.c.version).limit(1)).first()
            # has_table sees what create_all sees: on PostgreSQL, any schema on the search path
            inspector = sa.inspect(connection)
            ours = [table for table in metadata.tables if inspector.has_table(table)]
            if recorded or ours:
                return []
            metadata.create_all(connection, checkfirst=True)
            now = time.time()
            connection.execute(
                versions.insert(),
                [
                    {"version": version, "description": description, "applied_at": now}
                    for version, description, _ in MIGRATIONS
                ],
            )
    except IntegrityError:
        return []  # another process migrated it meanwhile: the steps find it recorded
    for version, description, _ in MIGRATIONS:
        logger.info("schema migration %s applied: %s", version, description)
    return [version for version, _, _ in MIGRATIONS]
