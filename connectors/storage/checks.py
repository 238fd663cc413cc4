"""Start-up checks: everything stored opens with the key ring, or start-up stops.

A value is readable when it carries the prefix of a key on the ring (`e.<id>.` for sealed
events, `r.<id>.` for the connector's sealed columns, `h.<id>.` for pseudonyms). Connector
columns still in the old form `e.<id>.` (bound to the column only, so a value moved to
another row would open) stop start-up until re-encryption has bound them to their row.
Rows written before encryption was enabled, or under a key that was dropped from the ring,
are counted and named in the error; one sample per key is opened, so a different key given
a known id is caught too. Each check scans its table once per start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from connectors.storage.keys import (
    PSEUDONYM_PREFIX,
    ROW_SEALED_PREFIX,
    SEALED_PREFIX,
    KeyRing,
    UnreadableError,
)
from connectors.storage.schema import CUSTOMER_TABLES, SEALED_COLUMNS
from connectors.storage.sealing import row_context, row_identity
from connectors.storage.tracker_events import EVENTS, open_event
from shop_contract.env_settings import ConfigError

REENCRYPT_HINT = (
    "written before encryption was enabled (run `make privacy ARGS=reencrypt` to encrypt "
    "them) or under a key that was removed from TRACKER_ENCRYPTION_KEY (put it back, newest "
    "key first)"
)


class StoredDataError(ConfigError):
    """Data in the database cannot be read with the configured keys; says what to do."""


def unreadable(column: Any, keys: KeyRing, kind: str) -> Any:
    """A clause true for a value of `column` that no key on the ring made."""
    return sa.and_(*(column.not_like(f"{prefix}%") for prefix in keys.prefixes(kind)))


def check_events_readable(engine: Any, keys: KeyRing) -> None:
    """Raises StoredDataError unless every stored tracker event opens with the key ring."""
    with engine.connect() as connection:
        _check(
            connection,
            keys,
            ("the tracker store", "event(s)", "conversations"),
            EVENTS,
            [
                unreadable(EVENTS.c.data, keys, SEALED_PREFIX),
                unreadable(EVENTS.c.sender_id, keys, PSEUDONYM_PREFIX),
            ],
            EVENTS.c.data,
            SEALED_PREFIX,
            lambda row: open_event(keys, row.sender_id, row.data),
        )


def check_tables_readable(engine: Any, keys: KeyRing) -> None:
    """The same for the connector's tables (connectors/storage/schema.py)."""
    with engine.connect() as connection:
        for name, table in CUSTOMER_TABLES.items():
            sealed = [table.c[column] for column in SEALED_COLUMNS[name]]
            _refuse_unbound(connection, table, sealed)
            clauses = [
                sa.and_(column.is_not(None), unreadable(column, keys, kind))
                for column, kind in [(table.c.customer_pseudonym, PSEUDONYM_PREFIX)]
                + [(column, ROW_SEALED_PREFIX) for column in sealed]
            ]
            clauses.append(
                sa.and_(table.c.customer_pseudonym.is_not(None), table.c.customer_sealed.is_(None))
            )
            _check(
                connection,
                keys,
                (f"table {name}", "row(s)", f"table {name}"),
                table,
                clauses,
                table.c.customer_sealed,
                ROW_SEALED_PREFIX,
                functools.partial(_open_customer, keys, table),
            )


def _refuse_unbound(connection: Any, table: Any, sealed: list[Any]) -> None:
    """Stops start-up while values sealed in the old form, which names no row, remain: the
    running bot never opens them, and re-encryption binds each to its row."""
    count = connection.execute(
        sa.select(sa.func.count())
        .select_from(table)
        .where(sa.or_(*(column.like(f"{SEALED_PREFIX}%") for column in sealed)))
    ).scalar_one()
    if count:
        raise StoredDataError(
            f"table {table.name} holds {count} row(s) sealed in the old form that does not "
            f"name the row: run `make privacy ARGS=reencrypt` once to bind them to their rows"
        )


def _open_customer(keys: KeyRing, table: Any, row: Any) -> str:
    context = row_context(table.name, "customer_sealed", row_identity(table, row._mapping))
    return keys.open(row.customer_sealed, context, ROW_SEALED_PREFIX)


def _check(
    connection: Any,
    keys: KeyRing,
    names: tuple[str, str, str],
    table: Any,
    clauses: list[Any],
    sealed: Any,
    kind: str,
    opening: Callable[[Any], object],
) -> None:
    """Counts the rows matching any of `clauses` (unreadable), then opens one value per key."""
    where, unit, what = names
    foreign = connection.execute(
        sa.select(sa.func.count()).select_from(table).where(sa.or_(*clauses))
    ).scalar_one()
    if foreign:
        raise StoredDataError(f"{where} holds {foreign} {unit} that no key opens: {REENCRYPT_HINT}")
    for key_id in keys.key_ids:
        sample = connection.execute(
            sa.select(table).where(sealed.like(f"{kind}{key_id}.%")).limit(1)
        ).first()
        if sample is None:
            continue
        try:
            opening(sample)
        except UnreadableError:
            raise StoredDataError(
                f"TRACKER_ENCRYPTION_KEY: key '{key_id}' does not open the {what} stored under "
                f"that id — a different key was given the same id, this is another shop's "
                f"database, or stored values were altered or moved between rows"
            ) from None
