"""Erasing a customer's data (`make privacy ARGS="erase …"`) says what stays with Stripe:
the Stripe Customer their conversation remembered (nothing else links it to them once the
conversation is gone, and it is never looked up by listing Stripe's customers), their
payments and subscriptions, that no subscription is cancelled, and how to remove them."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from unittest import mock

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.storage.encrypted_tracker import EncryptedTrackerStore
from connectors.storage.keys import ENV_VAR, new_key_line
from sandbox.processes import ROOT
from scripts.privacy_cli import main as privacy_main
from shop_contract.stripe_metadata import STRIPE_CUSTOMER_SLOT

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
CLARA = "15550903333"
KEY = new_key_line("k1")


def saved_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: SlotSet
) -> sa.engine.Engine:
    """Clara's conversation saved encrypted in a fresh SQLite store the CLI reads."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.chdir(tmp_path)  # no project .env
    monkeypatch.delenv("ENV_FILE", raising=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv(ENV_VAR, KEY)
    with mock.patch.dict(os.environ, {"DATABASE_URL": url, ENV_VAR: KEY}):
        store = EncryptedTrackerStore(domain=DOMAIN)
    tracker = DialogueStateTracker(CLARA, DOMAIN.slots)
    now = time.time()
    for event in (
        SessionStarted(timestamp=now),
        UserUttered("I'd like the coffee club", {"name": "order"}, timestamp=now),
        SlotSet(STRIPE_CUSTOMER_SLOT, "cus_test_clara", now),
        *extra,
    ):
        tracker.update(event)
    asyncio.run(store.save(tracker))
    return sa.create_engine(url)


def test_erase_names_the_stripe_customer_and_what_stripe_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paid = {"ORD-1": {"order_id": "ORD-1", "order_customer": "cus_test_clara_2"}}
    saved_conversation(tmp_path, monkeypatch, SlotSet("orders", paid))
    assert privacy_main(["erase", "--customer", CLARA, "--yes"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"]["events"] == 4
    assert printed["stripe_customers"] == ["cus_test_clara", "cus_test_clara_2"]
    assert printed["rows_not_read_for_stripe_customers"] == 0
    kept = printed["kept_by_stripe"]
    assert "does not cancel a subscription" in kept and "DELETE /v1/customers/{id}" in kept
    assert "whatsapp_user_id" in kept  # the WhatsApp number stays in Stripe's metadata
    assert CLARA not in json.dumps(printed)


@pytest.mark.parametrize(
    "tamper",
    [
        "update events set data = 'x' || substr(data, 2) where id = :i",
        "update events set data = NULL where id = :i",
        "update events set data = 42 where id = :i",
    ],
)
def test_a_row_that_does_not_open_never_stops_the_erasure(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tamper: str,
) -> None:
    engine = saved_conversation(tmp_path, monkeypatch)
    with engine.begin() as connection:  # the first row tampered with: it no longer opens
        first = connection.execute(sa.text("select min(id) from events")).scalar()
        connection.execute(sa.text(tamper), {"i": first})
    assert privacy_main(["erase", "--customer", CLARA, "--yes"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"]["events"] == 3
    assert printed["rows_not_read_for_stripe_customers"] == 1
    assert printed["stripe_customers"] == ["cus_test_clara"]
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from events")).scalar() == 0
