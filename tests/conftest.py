"""Shared test helpers: trackers for action tests, a clean payment configuration, the
emulator fixtures, the guard of the `live` marker (tests/support/live_marker.py) and the
grouping of tests for pytest-xdist's workers (tests/support/worker_groups.py)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.payments.client import stripe_client
from actions.settings import action_settings
from connectors.storage.keys import ENV_VAR, new_key_line
from shop_contract.catalog import Catalog, default_catalog
from tests.support import live_marker, rasa_core_marker, worker_groups
from tests.support.fixtures import (
    fake_graph,  # noqa: F401 - shared fixture
    graph_api,  # noqa: F401 - shared fixture
    stripe_api,  # noqa: F401 - shared fixture
)
from tests.support.sandbox_client import live_sandbox  # noqa: F401 - shared fixture

# The payment tests' `stripe_env` fixture, beside its helpers (imported after this module,
# whose helpers it uses).
pytest_plugins = ["tests.support.stripe_checkout"]

CUSTOMER = "test-customer-0001"

# Every store in the tests (and every bot they start) seals data at rest under a key made
# for this run, never one from a developer's .env.
os.environ[ENV_VAR] = new_key_line("test")


def pytest_configure(config: pytest.Config) -> None:
    live_marker.install(config)
    rasa_core_marker.install(config)
    # Collection imports Rasa and TensorFlow: millions of objects that live until the end.
    # The garbage collector would walk them again and again while they load; it resumes
    # once collection is done, with them frozen out of its way (pytest_collection_finish).
    # Not in xdist's controller, which collects nothing.
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        gc.disable()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    worker_groups.assign(items)


def pytest_collection_finish() -> None:
    """Exempt what collection loaded from the garbage collector, and turn it back on:
    otherwise each full collection during the tests, and pytest's own at exit, walks all of
    them again (~2 s per worker)."""
    gc.freeze()
    gc.enable()


def make_tracker(
    intent: str = "order",
    entities: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
    channel: str = "rest",
    sender_id: str = CUSTOMER,
) -> Tracker:
    """A tracker whose latest message is `intent` with `entities`, arrived on `channel`."""
    latest = {
        "intent": {"name": intent, "confidence": 1.0},
        "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
        "text": "",
    }
    events = [{"event": "user", "text": "", "parse_data": latest, "input_channel": channel}]
    return Tracker(sender_id, dict(slots or {}), latest, events, False, None, {}, "action_listen")


def run_action(
    action: Action, tracker: Tracker
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs an action; returns (messages sent, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def slot_updates(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The slot values set by a list of events, later ones winning."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def no_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The action server without STRIPE_SECRET_KEY."""
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    action_settings.cache_clear()
    stripe_client.cache_clear()
    yield
    action_settings.cache_clear()
    stripe_client.cache_clear()
