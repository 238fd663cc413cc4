"""Re-encryption: every stored value under the current key (`make privacy ARGS=reencrypt`).

After a new key is put in front of TRACKER_ENCRYPTION_KEY, this rewrites tracker events and
the connector's rows still made with an older key — or written in clear before encryption
was enabled — so the older key can then be dropped from the ring. It also rewrites the
connector's values sealed in the old form (`e.`, bound to the column only) in the row-bound
form (`r.`): this pass is the only reader of the old form, and the bot does not start while
any remains. It works in batches, each its own transaction, and can be stopped and run
again; it needs every older key that data still uses to be on the ring.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from connectors.storage.keys import (
    PSEUDONYM_PREFIX,
    ROW_SEALED_PREFIX,
    SEALED_PREFIX,
    KeyRing,
    UnreadableError,
)
from connectors.storage.schema import CUSTOMER_TABLES, SEALED_COLUMNS, customers
from connectors.storage.sealing import column_context, natural_key, row_identity
from connectors.storage.store import ConnectorStore
from connectors.storage.tracker_events import EVENTS, open_event, seal_event
from connectors.storage.wipe import scrub

BATCH = 500


def reencrypt(store: ConnectorStore) -> dict[str, int]:
    """Rewrites what is not under the current key; returns rows rewritten per table."""
    counts = {"events": _events(store.engine, store.keys)}
    for name, table in CUSTOMER_TABLES.items():
        counts[name] = _table(store, table, SEALED_COLUMNS[name])
    scrub(store.engine)
    return counts


def stale(column: Any, keys: KeyRing, kind: str) -> Any:
    """A clause true for a value of `column` not made with the current key."""
    return sa.and_(column.is_not(None), column.not_like(f"{kind}{keys.current_id}.%"))


def _events(engine: Any, keys: KeyRing) -> int:
    if not sa.inspect(engine).has_table("events"):
        return 0
    outdated = sa.or_(
        stale(EVENTS.c.data, keys, SEALED_PREFIX),
        stale(EVENTS.c.sender_id, keys, PSEUDONYM_PREFIX),
    )
    done = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                sa.select(EVENTS.c.id, EVENTS.c.sender_id, EVENTS.c.data)
                .where(outdated)
                .limit(BATCH)
            ).all()
            for row in rows:
                if row.data.startswith(SEALED_PREFIX):
                    sender_id, event = open_event(keys, row.sender_id, row.data)
                else:  # written in clear, before encryption was enabled
                    sender_id, event = row.sender_id, json.loads(row.data)
                pseudonym, sealed = seal_event(keys, sender_id, event)
                connection.execute(
                    EVENTS.update()
                    .where(EVENTS.c.id == row.id)
                    .values(sender_id=pseudonym, data=sealed)
                )
        done += len(rows)
        if len(rows) < BATCH:
            return done


def _table(store: ConnectorStore, table: sa.Table, sealed_columns: tuple[str, ...]) -> int:
    keys = store.keys
    outdated = sa.or_(
        stale(table.c.customer_pseudonym, keys, PSEUDONYM_PREFIX),
        sa.and_(table.c.customer_pseudonym.is_not(None), table.c.customer_sealed.is_(None)),
        *(stale(table.c[column], keys, ROW_SEALED_PREFIX) for column in sealed_columns),
    )
    (key_column,) = table.primary_key.columns
    done = 0
    while True:
        with store.engine.begin() as connection:
            rows = connection.execute(sa.select(table).where(outdated).limit(BATCH)).all()
            for row in rows:
                _rewrite(store, connection, table, key_column, row, sealed_columns)
        done += len(rows)
        if len(rows) < BATCH:
            return done


def _rewrite(
    store: ConnectorStore,
    connection: Any,
    table: sa.Table,
    key_column: Any,
    row: Any,
    sealed_columns: tuple[str, ...],
) -> None:
    values: dict[str, Any] = {}
    customer_id = _customer_id(store, table, row)
    if customer_id is not None:
        values["customer_pseudonym"] = store.keys.pseudonym(customer_id)
    # The row as rewritten: its values are bound to its pseudonym, which a new key changes
    # (and which names a customer's row of wa_customers).
    rewritten = {**row._mapping, **values}
    bound_to = row_identity(table, rewritten)
    if customer_id is not None:
        values.update(
            store.sealer.customer_columns(table, natural_key(table, rewritten), customer_id)
        )
    for column in sealed_columns:
        if column != "customer_sealed":
            values[column] = store.sealer.seal(
                table, column, bound_to, _plain(store, table, column, row)
            )
    if table is customers:
        twin = connection.execute(
            sa.select(customers.c.last_inbound_at).where(
                customers.c.customer_pseudonym == values["customer_pseudonym"]
            )
        ).first()
        if twin is not None and values["customer_pseudonym"] != row.customer_pseudonym:
            # The customer wrote again after the rotation: keep one row, the later time.
            connection.execute(
                customers.update()
                .where(customers.c.customer_pseudonym == values["customer_pseudonym"])
                .values(last_inbound_at=max(twin.last_inbound_at, row.last_inbound_at))
            )
            connection.execute(customers.delete().where(key_column == row.customer_pseudonym))
            return
    connection.execute(table.update().where(key_column == row[key_column.name]).values(**values))


def _customer_id(store: ConnectorStore, table: sa.Table, row: Any) -> str | None:
    """The customer the row belongs to, checked against its pseudonym: an id sealed in the
    old form could have been moved from another customer's row, and must not be bound to
    this one."""
    if row.customer_pseudonym is None:
        return None
    if row.customer_sealed is None:
        return str(row.customer_pseudonym)  # the id in clear: rows from before pseudonyms
    customer_id = str(_plain(store, table, "customer_sealed", row))
    if row.customer_pseudonym not in store.keys.pseudonyms(customer_id):
        raise UnreadableError(
            f"{table.name}.customer_sealed of row {natural_key(table, row._mapping)} names "
            f"another customer than the row's customer_pseudonym: the value was moved from another "
            f"row; delete or correct that row, then run reencrypt again"
        )
    return customer_id


def _plain(store: ConnectorStore, table: sa.Table, column: str, row: Any) -> str | None:
    """The value of `column` in clear, from whichever form it is stored in."""
    value = row[column]
    if value is None:
        return None
    if value.startswith(ROW_SEALED_PREFIX):
        return store.sealer.open(table, column, row_identity(table, row._mapping), value)
    if value.startswith(SEALED_PREFIX):  # the old form, bound to the column only
        return store.keys.open(value, column_context(table.name, column))
    return value  # type: ignore[no-any-return]  # in clear, from before encryption
