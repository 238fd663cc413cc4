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


def test_erase_names_the_stripe_customer_and_what_stripe_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
    ):
        tracker.update(event)
    asyncio.run(store.save(tracker))

    assert privacy_main(["erase", "--customer", CLARA, "--yes"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"]["events"] == 3
    assert printed["stripe_customers"] == ["cus_test_clara"]
    kept = printed["kept_by_stripe"]
    assert "does not cancel a subscription" in kept and "DELETE /v1/customers/{id}" in kept
    assert CLARA not in json.dumps(printed)
