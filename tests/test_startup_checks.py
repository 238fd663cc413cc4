"""The channel's refusal to run without the encrypted tracker store, checked in-process:
Rasa's own fallback (an in-memory store, or no store) stops the server with a message that
names the store endpoints.yml must configure; the store endpoints.yml names passes, wrapped
as Rasa wraps it. (tests/test_privacy_startup.py sees the same refusal stop `rasa run`.)"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import read_endpoint_config

from connectors.storage.encrypted_tracker import EncryptedTrackerStore
from connectors.whatsapp.startup_checks import refuse_unencrypted_tracker_store

ROOT = Path(__file__).resolve().parent.parent


def refusal(agent: Any, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        refuse_unencrypted_tracker_store(agent)
    assert stopped.value.code == 1
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "agent",
    [
        SimpleNamespace(tracker_store=FailSafeTrackerStore(InMemoryTrackerStore(Domain.empty()))),
        SimpleNamespace(tracker_store=InMemoryTrackerStore(Domain.empty())),
        None,
    ],
    ids=["wrapped in-memory store", "in-memory store", "no agent"],
)
def test_conversations_in_clear_stop_the_server(
    agent: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    message = refusal(agent, capsys)
    assert "conversations would not be encrypted at rest" in message
    named = re.search(r"type: ([\w.]+)`", message)
    assert named is not None, message
    module, _, name = named.group(1).rpartition(".")
    assert getattr(importlib.import_module(module), name) is EncryptedTrackerStore
    assert read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store").type == (
        named.group(1)
    )


def test_the_store_endpoints_yml_names_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    agent = SimpleNamespace(tracker_store=TrackerStore.create(config, Domain.empty()))
    refuse_unencrypted_tracker_store(agent)
    assert capsys.readouterr().out == ""
