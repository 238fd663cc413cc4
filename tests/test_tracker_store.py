from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from connectors.storage.database import DatabaseConfigError, database_url
from connectors.storage.encrypted_tracker import EncryptedTrackerStore

ROOT = Path(__file__).resolve().parent.parent


def test_default_is_a_sqlite_file_under_var_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url({}) == f"sqlite:///{tmp_path / 'var' / 'tracker.db'}"


def test_malformed_url_is_named() -> None:
    with pytest.raises(DatabaseConfigError, match="DATABASE_URL: not a database URL"):
        database_url({"DATABASE_URL": "localhost:5432"})


def test_endpoints_yml_loads_this_store_and_keeps_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "sub" / "tracker.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    domain = Domain.load(str(ROOT / "domain.yml"))
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    store = TrackerStore.create(config, domain)
    inner = getattr(store, "_tracker_store", store)
    assert isinstance(inner, EncryptedTrackerStore), type(inner)

    tracker = DialogueStateTracker.from_events(
        "customer-1", [UserUttered("hi", {"name": "greet"}), SlotSet("order_id", "ORD-1")]
    )
    asyncio.run(inner.save(tracker))
    fresh = EncryptedTrackerStore(domain=domain)
    loaded = asyncio.run(fresh.retrieve("customer-1"))
    assert loaded is not None and loaded.get_slot("order_id") == "ORD-1"
    assert db.exists()
