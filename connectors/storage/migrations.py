"""Versioned schema changes for the connector's tables; safe to run twice, and by several
replicas at once. `python -m scripts.migrate` (or `make migrate`) runs them; so does
every start of the connector.

Each step is idempotent (it checks what exists before changing it) and is recorded in
`connector_schema_versions`; a step already recorded is skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

logger = logging.getLogger(__name__)

versions = sa.Table(
    "connector_schema_versions",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)


def _create_tables(connection: Connection) -> None:
    from connectors.storage.store import metadata

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
        for name, kind in columns:
            if name not in present:
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    _digest_column(connection, "wa_flow_token_claims", "flow_token")


def _digest_column(connection: Connection, table: str, column: str) -> None:
    """Replaces the values of `table.column` not yet stored as SHA-256 hex by their digest."""
    from connectors.storage.store import digest

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
]


MIGRATION_LOCK_ID = 7_263_104_551  # a PostgreSQL advisory lock: one replica migrates at once


def migrate(engine: Engine) -> list[int]:
    """Applies the steps not yet recorded; returns the versions applied now."""
    if engine.dialect.name != "postgresql":
        return _migrate(engine)
    with engine.connect() as holder:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
        try:
            return _migrate(engine)
        finally:
            holder.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")


def _migrate(engine: Engine) -> list[int]:
    versions.create(engine, checkfirst=True)
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
