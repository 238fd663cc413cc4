"""What the outbox does when Meta refuses a message: a dead letter at once when the refusal
is final (the customer's later messages then go out), retried in order when it may pass."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from connectors.jobs.outbox import is_final
from connectors.settings import WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.graph import GraphApiError, GraphClient, GraphSettings
from connectors.whatsapp.output import WhatsAppOutput
from sandbox.graph_api import GraphApiEmulator
from tests.test_outbox import BODY, CUSTOMER, run_worker


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectorStore:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return open_store(url)


def test_a_message_meta_refuses_for_good_is_dead_at_once_and_holds_up_nothing(
    store: ConnectorStore, graph_api: GraphApiEmulator
) -> None:
    settings = GraphSettings(graph_api.base_url, graph_api.phone_number_id, graph_api.access_token)
    whatsapp = WhatsAppSettings(
        graph_api.access_token, graph_api.phone_number_id, ("s",), "v", graph_api.base_url
    )
    output = WhatsAppOutput(whatsapp, GraphClient(settings), store, notifications=True)
    store.messages.touch_customer(CUSTOMER, time.time())  # within the 24-hour window
    malformed = {"type": "text", "text": {}}  # Meta answers 400 (#100): no body
    store.outbox.enqueue("evt_8:0", CUSTOMER, json.dumps(malformed))
    store.outbox.enqueue("evt_8:1", CUSTOMER, json.dumps(BODY))

    assert run_worker(store, output.deliver) == 1  # the next message went out in the same round
    first, second = store.outbox.entries()
    assert (first.status, first.attempts) == ("dead", 1)
    assert first.last_error is not None and "status=400" in first.last_error
    assert second.status == "sent"
    assert [m["text"] for m in graph_api.messages() if m.get("to") == CUSTOMER][-1] == BODY["text"]


def test_a_refusal_that_may_pass_is_retried_and_holds_up_the_customer(
    store: ConnectorStore, graph_api: GraphApiEmulator
) -> None:
    expired_token = GraphSettings(graph_api.base_url, graph_api.phone_number_id, "old-token")
    whatsapp = WhatsAppSettings(
        "old-token", graph_api.phone_number_id, ("s",), "v", graph_api.base_url
    )
    output = WhatsAppOutput(whatsapp, GraphClient(expired_token), store, notifications=True)
    store.messages.touch_customer(CUSTOMER, time.time())
    store.outbox.enqueue("evt_9:0", CUSTOMER, json.dumps(BODY))
    store.outbox.enqueue("evt_9:1", CUSTOMER, json.dumps(BODY))

    assert run_worker(store, output.deliver) == 0  # Meta answers 401 (#190) until it is fixed
    first, second = store.outbox.entries()
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error is not None and "code=190" in first.last_error
    assert (second.status, second.attempts) == ("pending", 0)  # waits, in order


@pytest.mark.parametrize(
    ("status", "code", "final"),
    [
        (400, 100, True),  # invalid parameter, or not a WhatsApp number
        (400, 131026, True),  # undeliverable
        (400, 132001, True),  # no such template
        (400, 130429, False),  # throughput limit, answered with 400
        (400, 131056, False),  # too many messages to this number
        (400, 131048, False),  # spam rate limit
        (401, 190, False),  # expired token
        (400, None, False),  # no code: not known to be final
        (None, None, False),  # no answer at all
    ],
)
def test_only_meta_codes_that_never_pass_are_final(
    status: int | None, code: int | None, final: bool
) -> None:
    error = GraphApiError(status, code, "title", retryable=False)
    assert is_final(error) is final
