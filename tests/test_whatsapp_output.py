"""The output channel against the fake Graph API and fake WASender (real HTTP servers)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connectors.settings import WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.output import WhatsAppOutput
from connectors.whatsapp.wasender import WaSenderClient
from sandbox.graph_api import GraphApiEmulator
from tests.support.wasender import FakeWaSender

CUSTOMER = "15550002222"
DAY = 24 * 60 * 60


@pytest.fixture
def wasender() -> Iterator[FakeWaSender]:
    fake = FakeWaSender(secrets.token_hex(8))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def settings(graph: GraphApiEmulator, **changes: Any) -> WhatsAppSettings:
    base = WhatsAppSettings(
        access_token=graph.access_token,
        phone_number_id=graph.phone_number_id,
        app_secrets=("s",),
        verify_token="v",
        api_base=graph.base_url,
        notification_template="order_update",
        template_language="en_US",
    )
    return replace(base, **changes)


def send(
    graph: GraphApiEmulator,
    store: ConnectorStore,
    message: dict[str, Any],
    notifications: bool,
    wasender: FakeWaSender | None = None,
    **changes: Any,
) -> None:
    async def run() -> None:
        config = settings(graph, **changes)
        client = GraphClient(
            GraphSettings(config.api_base, config.phone_number_id, config.access_token)
        )
        sender = (
            WaSenderClient(wasender.base_url, wasender.api_key, base_backoff_seconds=0.01)
            if wasender
            else None
        )
        channel = WhatsAppOutput(config, client, store, notifications, sender)
        await channel.send_response(CUSTOMER, message)
        await client.close()
        if sender:
            await sender.close()

    asyncio.run(run())


def kinds(store: ConnectorStore) -> list[str]:
    with store.engine.connect() as connection:
        return [
            row[0] for row in connection.exec_driver_sql("select kind from wa_outbound_messages")
        ]


def test_inside_the_window_messages_go_out_as_they_are(
    fake_graph: GraphApiEmulator, store: ConnectorStore
) -> None:
    store.messages.touch_customer(CUSTOMER, time.time() - 60)
    send(fake_graph, store, {"text": "Your order ORD-1 is confirmed."}, notifications=True)
    assert fake_graph.messages() == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER,
            "type": "text",
            "text": {"body": "Your order ORD-1 is confirmed."},
        }
    ]
    assert kinds(store) == ["notification"]


def test_long_text_is_split(fake_graph: GraphApiEmulator, store: ConnectorStore) -> None:
    store.messages.touch_customer(CUSTOMER, time.time())
    paragraph = "Coffee is lovely. " * 200
    send(fake_graph, store, {"text": "\n\n".join([paragraph] * 3)}, notifications=False)
    bodies = [m["text"]["body"] for m in fake_graph.messages()]
    assert len(bodies) >= 3 and all(len(b) <= 4096 for b in bodies)


def test_outside_the_window_a_reply_is_not_attempted(
    fake_graph: GraphApiEmulator, store: ConnectorStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.messages.touch_customer(CUSTOMER, time.time() - DAY - 60)
    with caplog.at_level(logging.INFO):
        send(fake_graph, store, {"text": "Anything else?"}, notifications=False)
    assert fake_graph.messages() == []
    assert "free-form reply not attempted" in caplog.text


def test_outside_the_window_a_notification_becomes_the_template(
    fake_graph: GraphApiEmulator, store: ConnectorStore
) -> None:
    store.messages.touch_customer(CUSTOMER, time.time() - 2 * DAY)
    text = "Payment received, thank you! Order ORD-1 is confirmed:\n1 × Espresso Beans — €12.90"
    send(fake_graph, store, {"text": text}, notifications=True)
    (message,) = fake_graph.messages()
    assert message["type"] == "template"
    assert message["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {
                        "type": "text",
                        "text": "Payment received, thank you! Order ORD-1 is confirmed: "
                        "1 × Espresso Beans — €12.90",
                    }
                ],
            }
        ],
    }
    assert kinds(store) == ["template"]


def test_template_parameters_follow_the_mapping(
    fake_graph: GraphApiEmulator, store: ConnectorStore
) -> None:
    link = {
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": "Your link expired.\nHere's a fresh one:"},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Pay now", "url": "https://pay/2"},
            },
        },
    }
    send(
        fake_graph,
        store,
        {"custom": link},
        notifications=True,
        template_params=("first_line", "text"),
    )
    (message,) = fake_graph.messages()
    parameters = [p["text"] for p in message["template"]["components"][0]["parameters"]]
    assert parameters == [
        "Your link expired.",
        "Your link expired. Here's a fresh one: https://pay/2",
    ]


def test_no_template_configured_means_nothing_is_sent(
    fake_graph: GraphApiEmulator, store: ConnectorStore, caplog: pytest.LogCaptureFixture
) -> None:
    send(fake_graph, store, {"text": "Paid!"}, notifications=True, notification_template=None)
    assert fake_graph.messages() == []
    assert "no WHATSAPP_NOTIFICATION_TEMPLATE" in caplog.text


@pytest.mark.parametrize(
    ("last_wrote", "changes", "refused"),
    [
        (60, {"notification_template": None}, False),  # in the window: free-form goes
        (DAY + 60, {}, False),  # outside it: the template goes
        (DAY + 60, {"notification_template": None}, True),  # nothing can go
        (None, {"notification_template": None}, True),  # never wrote
    ],
)
def test_a_notification_is_refused_ahead_only_where_it_could_not_go_out(
    fake_graph: GraphApiEmulator,
    store: ConnectorStore,
    last_wrote: float | None,
    changes: dict[str, Any],
    refused: bool,
) -> None:
    """What the orders API answers before the outbox tries (connectors/orders/turns.py)."""
    if last_wrote is not None:
        store.messages.touch_customer(CUSTOMER, time.time() - last_wrote)
    config = settings(fake_graph, **changes)
    graph = GraphClient(GraphSettings(config.api_base, config.phone_number_id, "t"))
    refusal = WhatsAppOutput(config, graph, store, True).notification_refusal(CUSTOMER)
    assert (refusal is not None) is refused
    assert not refused or "no WHATSAPP_NOTIFICATION_TEMPLATE" in str(refusal)


def test_wasender_carries_notifications_outside_the_window(
    fake_graph: GraphApiEmulator, store: ConnectorStore, wasender: FakeWaSender
) -> None:
    wasender.queued.append((429, {"Retry-After": "0"}))
    send(
        fake_graph,
        store,
        {"text": "Order ORD-1 is confirmed."},
        notifications=True,
        wasender=wasender,
        notification_transport="wasender",
    )
    assert fake_graph.messages() == []
    assert wasender.sent == [{"to": f"+{CUSTOMER}", "text": "Order ORD-1 is confirmed."}]


def test_custom_messages(fake_graph: GraphApiEmulator, store: ConnectorStore) -> None:
    store.messages.touch_customer(CUSTOMER, time.time())
    send(fake_graph, store, {"custom": {"flow_response": {"screen": "X"}}}, notifications=False)
    send(fake_graph, store, {"custom": {"no": "type"}}, notifications=False)
    assert fake_graph.messages() == []
    flow = {"type": "interactive", "interactive": {"type": "flow", "body": {"text": "Order"}}}
    send(fake_graph, store, {"custom": flow}, notifications=False)
    (message,) = fake_graph.messages()
    assert message["interactive"] == flow["interactive"] and message["to"] == CUSTOMER


def test_a_custom_message_cannot_choose_its_recipient(
    fake_graph: GraphApiEmulator, store: ConnectorStore
) -> None:
    store.messages.touch_customer(CUSTOMER, time.time())
    redirect = {
        "type": "text",
        "text": {"body": "Your order"},
        "to": "15559999999",
        "recipient": "US.999",
        "messaging_product": "sms",
    }
    send(fake_graph, store, {"custom": redirect}, notifications=False)
    (message,) = fake_graph.messages()
    assert (message["to"], message.get("recipient")) == (CUSTOMER, None)
    assert message["messaging_product"] == "whatsapp"


def test_graph_errors_are_logged_with_code_not_raised(
    fake_graph: GraphApiEmulator, store: ConnectorStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.messages.touch_customer(CUSTOMER, time.time())
    error = {
        "error": {"message": "Recipient not allowed", "code": 131030, "type": "OAuthException"}
    }
    fake_graph.queue_responses((400, error, {}))
    send(fake_graph, store, {"text": "hello"}, notifications=False)
    assert "code=131030" in caplog.text and CUSTOMER not in caplog.text
    assert kinds(store) == []
