"""Sealing the connector's columns: every sealed value is bound to its row.

Callers of the repositories pass and get back real ids and plain text; the repositories
seal with a `Sealer`. A sealed value's associated data names the table, the column, the
row's natural key (schema.ROW_IDS) and the row's `customer_pseudonym`, so a value moved to
another row (another customer's id, another message's body) does not open, nor does a row
whose pseudonym was changed to file it under another customer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from connectors.metrics import UNREADABLE_ROWS
from connectors.storage.keys import ROW_SEALED_PREFIX, SEALED_PREFIX, KeyRing, UnreadableError
from connectors.storage.schema import ROW_IDS

logger = logging.getLogger(__name__)


def column_context(table: str, column: str) -> bytes:
    """The associated data of the old form (SEALED_PREFIX), which names no row: only
    re-encryption still opens it, to rewrite it in the row-bound form."""
    return f"{table}.{column}".encode()


def row_context(table: str, column: str, row: str) -> bytes:
    """The associated data a sealed value (ROW_SEALED_PREFIX) of `table.column` in the row
    bound as `row` (see `binding`) is authenticated with. Table and column names hold no
    NUL, so the separator keeps every (column, row) pair's context distinct."""
    return f"{table}.{column}\0{row}".encode()


def binding(row_id: str, customer_pseudonym: str | None) -> str:
    """What a row's sealed values are bound to: its natural key and its customer's
    pseudonym. Natural keys (digests, Stripe ids, dedup keys, pseudonyms) hold no NUL."""
    return f"{row_id}\0{customer_pseudonym or ''}"


def natural_key(table: sa.Table, row: Mapping[str, Any]) -> str:
    """The natural key (ROW_IDS) of a row of `table`."""
    return str(row[ROW_IDS[table.name]])


def row_identity(table: sa.Table, row: Mapping[str, Any]) -> str:
    """The binding of a stored row of `table`, as its sealed values are bound to it."""
    return binding(natural_key(table, row), row.get("customer_pseudonym"))


def digest(identifier: str) -> str:
    """How a message id or Flow token is stored: its SHA-256, in hex."""
    return hashlib.sha256(identifier.encode()).hexdigest()


class Sealer:
    """Seals and opens the connector's columns with the key ring (the first key seals)."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

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

    def with_customers(
        self, table: sa.Table, rows: Iterable[Any], named: Callable[[Any], str]
    ) -> Iterator[tuple[Any, str]]:
        """Each row with its customer id opened. A row whose customer does not open is
        skipped, logged (as `named(row)`) and counted: nobody can act on it, and start-up
        names such rows."""
        for row in rows:
            try:
                customer_id = self.open(
                    table,
                    "customer_sealed",
                    row_identity(table, row._mapping),
                    row.customer_sealed,
                )
            except UnreadableError as error:
                logger.error("%s cannot be opened: %s", named(row), error)
                UNREADABLE_ROWS.labels(table.name).inc()
                continue
            yield row, str(customer_id)

    def customer_columns(
        self, table: sa.Table, row_id: str, customer_id: str
    ) -> dict[str, str | None]:
        """The pseudonym and the sealed id of a customer, for the row of `table` whose
        natural key is `row_id`."""
        pseudonym = self.keys.pseudonym(customer_id)
        return {
            "customer_pseudonym": pseudonym,
            "customer_sealed": self.seal(
                table, "customer_sealed", binding(row_id, pseudonym), customer_id
            ),
        }

    def owned_by(self, table: sa.Table, customer_id: str) -> Any:
        """A WHERE clause for the customer's rows, whichever key they were written under."""
        return table.c.customer_pseudonym.in_(self.keys.pseudonyms(customer_id))
