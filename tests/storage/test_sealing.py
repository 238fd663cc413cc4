"""The Sealer: a sealed value opens only in the table, column and row it was sealed for."""

from __future__ import annotations

import hashlib

import pytest

from connectors.storage.keys import KeyRing, UnreadableError, new_key_line
from connectors.storage.schema import outbox, stripe_events
from connectors.storage.sealing import Sealer, binding, column_context, digest

KEYS = KeyRing.parse(new_key_line("k1"))
ANNA, BORIS = "15550501111", "15550502222"


def test_a_value_opens_only_where_it_was_sealed() -> None:
    sealer = Sealer(KEYS)
    row = binding("evt_1:0", KEYS.pseudonym(ANNA))
    sealed = sealer.seal(outbox, "body", row, "Order paid")
    assert sealed is not None and sealed.startswith("r.k1.")
    assert sealer.open(outbox, "body", row, sealed) == "Order paid"
    elsewhere = [
        (outbox, "body", binding("evt_2:0", KEYS.pseudonym(ANNA))),  # another row
        (outbox, "body", binding("evt_1:0", KEYS.pseudonym(BORIS))),  # refiled
        (outbox, "customer_sealed", row),  # another column
        (stripe_events, "body", row),  # another table
    ]
    for table, column, bound_to in elsewhere:
        with pytest.raises(UnreadableError, match=rf"{table.name}\.{column}: .*another row"):
            sealer.open(table, column, bound_to, sealed)
    assert sealer.seal(outbox, "body", row, None) is None
    assert sealer.open(outbox, "body", row, None) is None


def test_the_old_form_that_names_no_row_is_refused_with_its_fix() -> None:
    old_form = KEYS.seal("Order paid", column_context("notification_outbox", "body"))
    with pytest.raises(UnreadableError, match="make privacy ARGS=reencrypt"):
        Sealer(KEYS).open(outbox, "body", binding("evt_1:0", None), old_form)


def test_customer_columns_hold_the_pseudonym_and_the_id_sealed_for_the_row() -> None:
    sealer = Sealer(KEYS)
    columns = sealer.customer_columns(outbox, "evt_1:0", ANNA)
    assert columns["customer_pseudonym"] == KEYS.pseudonym(ANNA)
    bound_to = binding("evt_1:0", KEYS.pseudonym(ANNA))
    assert sealer.open(outbox, "customer_sealed", bound_to, columns["customer_sealed"]) == ANNA


def test_identifiers_are_kept_as_sha256_hex() -> None:
    assert digest("wamid.X") == hashlib.sha256(b"wamid.X").hexdigest()
