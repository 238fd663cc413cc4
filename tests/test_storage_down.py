"""When the database cannot record a webhook, the platform is told to retry (5xx)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sanic import response as sanic_response

from connectors.edge.signatures import hub_signature
from connectors.settings import FlowSettings, WhatsAppSettings
from connectors.storage.keys import KeyRing
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.channel import WhatsAppInput
from sandbox import meta
from sandbox import stripe_events as se

SECRET = "app-secret-for-tests"
WEBHOOK_SECRET = "whsec_for_tests"


@dataclass
class FakeRequest:
    """What the handlers read from a Sanic request."""

    body: bytes
    headers: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    app: Any = None


@pytest.fixture
def channel() -> WhatsAppInput:
    settings = WhatsAppSettings("token", "123", (SECRET,), "verify", "http://127.0.0.1:9/v23.0")
    # A store builds no connection until it is used: this one's database is unreachable.
    unreachable = sa.create_engine("sqlite:////nonexistent-dir/nowhere.db")
    store = ConnectorStore(unreachable, KeyRing.from_env())
    return WhatsAppInput(settings, store, FlowSettings(None), (WEBHOOK_SECRET,))


def test_messages_webhook_answers_503_when_nothing_can_be_recorded(channel: WhatsAppInput) -> None:
    document = meta.notification([meta.text("15550700001", "hi")], [meta.contact("15550700001")])
    body = json.dumps(document).encode()
    request = FakeRequest(body, {"X-Hub-Signature-256": hub_signature(body, SECRET)})

    async def never(_: Any) -> None:
        raise AssertionError("nothing may be processed")

    answer = asyncio.run(channel.messages.receive_notification(request, never))  # type: ignore[arg-type]
    assert answer.status == 503


def test_stripe_webhook_answers_503_when_nothing_can_be_recorded(channel: WhatsAppInput) -> None:
    body, headers = se.signed(
        se.event("checkout.session.completed", {"id": "cs_1"}), WEBHOOK_SECRET
    )
    answer = asyncio.run(channel.stripe.handle(FakeRequest(body, headers)))  # type: ignore[arg-type]
    assert answer.status == 503


def test_health_says_degraded(channel: WhatsAppInput) -> None:
    answer = asyncio.run(channel.ops.health())
    assert answer.status == 503
    assert isinstance(answer, sanic_response.HTTPResponse) and answer.body is not None
    assert json.loads(answer.body) == {"status": "degraded", "database": "unreachable"}
