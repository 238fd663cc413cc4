"""A Flow completion that arrives as an `nfm_reply` on the messages webhook: its flow token
must be ours, unexpired and issued to the customer who sends it; a completion whose turn
failed does not use the token up.

The channel runs in-process with the real store and the Graph API emulator; a stand-in for
Rasa records the turns (the live path, with a real action server, is in test_recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from connectors.flows.completion import complete_once
from connectors.flows.endpoint import EXPIRED_MESSAGE
from connectors.settings import FlowSettings, WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.storage.sealing import digest
from connectors.whatsapp.channel import WhatsAppInput
from connectors.whatsapp.intents import completion_token
from connectors.whatsapp.payloads import InboundMessage, message_to_json, parse_notification
from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from shop_contract.flow_tokens import DEFAULT_TTL_SECONDS, issue_token

SECRETS = ("old-app-secret", "new-app-secret")
CUSTOMER = "15550810001"
OTHER_CUSTOMER = "15550810002"


@dataclass
class FakeRasa:
    """Records the turns; the first `failures` completion turns raise (action server down)."""

    failures: int = 0
    turns: list[str] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.turns.append(message.text)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("action server unreachable")


@pytest.fixture
def channel(tmp_path: Path, fake_graph: GraphApiEmulator) -> WhatsAppInput:
    settings = WhatsAppSettings(
        fake_graph.access_token,
        fake_graph.phone_number_id,
        SECRETS,
        "verify",
        fake_graph.base_url,
    )
    store = open_store(f"sqlite:///{tmp_path / 'completion.db'}")
    return WhatsAppInput(settings, store, FlowSettings(None))


def completion(token: str) -> dict[str, Any]:
    return {"flow_token": token, "flow_ref": token, "cart": "gift-card:1", "then": "checkout"}


def deliver(channel: WhatsAppInput, rasa: FakeRasa, *responses: dict[str, Any]) -> list[str]:
    """Each response as its own nfm_reply from CUSTOMER; the errors of the turns."""
    errors: list[str] = []

    async def scenario() -> None:
        for response in responses:
            document = meta.notification(
                [meta.nfm_reply(CUSTOMER, response)], [meta.contact(CUSTOMER)]
            )
            (message,) = parse_notification(document).messages
            try:
                await channel.messages.handle_message(message, rasa)
            except ConnectionError as error:
                errors.append(str(error))
        await channel.graph.close()

    asyncio.run(scenario())
    return errors


def texts_to(graph: GraphApiEmulator, customer: str) -> list[str]:
    return [m["text"]["body"] for m in graph.messages() if m.get("to") == customer]


def test_a_valid_completion_becomes_one_flow_completed_turn(
    channel: WhatsAppInput, fake_graph: GraphApiEmulator
) -> None:
    rasa = FakeRasa()
    token = issue_token(CUSTOMER, SECRETS)
    deliver(channel, rasa, completion(token), completion(token))
    assert len(rasa.turns) == 1 and rasa.turns[0].startswith("/flow_completed")
    assert '"cart":"gift-card:1"' in rasa.turns[0].replace(" ", "")


def test_a_completion_from_a_flow_sent_before_the_cart_is_still_a_turn(
    channel: WhatsAppInput,
) -> None:
    rasa = FakeRasa()
    token = issue_token(CUSTOMER, SECRETS)
    deliver(channel, rasa, {"flow_token": token, "product": "gift-card", "quantity": "1"})
    assert len(rasa.turns) == 1 and rasa.turns[0].startswith("/flow_completed")


def test_continue_in_the_chat_is_no_order_turn(channel: WhatsAppInput) -> None:
    rasa = FakeRasa()
    token = issue_token(CUSTOMER, SECRETS)
    deliver(channel, rasa, {"flow_token": token, "continue_in_chat": "true"})
    assert rasa.turns == []


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: issue_token(OTHER_CUSTOMER, SECRETS), "issued for another conversation"),
        (
            lambda: issue_token(CUSTOMER, SECRETS, now=time.time() - DEFAULT_TTL_SECONDS - 60),
            "expired",
        ),
        (lambda: "ft1.forged", "not issued by this shop"),
    ],
    ids=["another customer's", "expired", "forged"],
)
def test_a_completion_with_a_foreign_or_expired_token_is_refused_politely(
    channel: WhatsAppInput,
    fake_graph: GraphApiEmulator,
    caplog: pytest.LogCaptureFixture,
    token: Any,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    rasa = FakeRasa()
    refused = token()
    deliver(channel, rasa, completion(refused))
    assert rasa.turns == []
    assert texts_to(fake_graph, CUSTOMER) == [EXPIRED_MESSAGE]
    (line,) = [
        r.getMessage() for r in caplog.records if "flow completion refused" in r.getMessage()
    ]
    assert reason in line and CUSTOMER not in line and refused not in line
    assert channel.store.flow_claims.claim(refused, "test") == "ours"  # not used up


def test_a_completion_without_any_token_is_refused(
    channel: WhatsAppInput, fake_graph: GraphApiEmulator
) -> None:
    rasa = FakeRasa()
    deliver(channel, rasa, {"product": "gift-card", "quantity": "1"})
    assert rasa.turns == []
    assert texts_to(fake_graph, CUSTOMER) == [EXPIRED_MESSAGE]


def test_a_failed_completion_does_not_use_the_token_up(channel: WhatsAppInput) -> None:
    rasa = FakeRasa(failures=1)
    token = issue_token(CUSTOMER, SECRETS)
    errors = deliver(channel, rasa, completion(token), completion(token), completion(token))
    assert errors == ["action server unreachable"]
    assert len(rasa.turns) == 2  # the failed turn, then the one that made the order


def nfm_reply(response: dict[str, Any]) -> InboundMessage:
    """An nfm_reply from CUSTOMER, as Meta delivers it (and as a replay reads it back)."""
    document = meta.notification([meta.nfm_reply(CUSTOMER, response)], [meta.contact(CUSTOMER)])
    (message,) = parse_notification(document).messages
    return message


def handle(channel: WhatsAppInput, rasa: FakeRasa, message: InboundMessage) -> None:
    async def scenario() -> None:
        await channel.messages.handle_message(message, rasa)
        await channel.graph.close()

    asyncio.run(scenario())


def recorded(channel: WhatsAppInput, message: InboundMessage) -> None:
    channel.store.messages.record_inbound(message.id, CUSTOMER, None, message_to_json(message), "x")


def processed(channel: WhatsAppInput) -> bool:
    """Whether the one recorded message is finished (else the sweep replays it)."""
    return channel.store.health()["pending_messages"] == 0


def test_the_replay_of_a_completion_cut_off_by_a_crash_makes_the_order(
    channel: WhatsAppInput,
) -> None:
    rasa = FakeRasa()
    message = nfm_reply(completion(issue_token(CUSTOMER, SECRETS)))
    recorded(channel, message)
    token = completion_token(message.flow_response or {})
    assert token is not None
    # The process claimed the token for this message and crashed during the turn.
    assert channel.store.flow_claims.claim(token, digest(message.id)) == "ours"
    handle(channel, rasa, message)  # the recovery sweep's replay
    assert len(rasa.turns) == 1 and rasa.turns[0].startswith("/flow_completed")
    assert processed(channel) and channel.store.flow_claims.is_done(token)


def test_a_completion_whose_token_another_turn_holds_waits_for_a_replay(
    channel: WhatsAppInput,
) -> None:
    rasa = FakeRasa()
    message = nfm_reply(completion(issue_token(CUSTOMER, SECRETS)))
    recorded(channel, message)
    token = completion_token(message.flow_response or {})
    assert token is not None
    # The Flow endpoint's completion turn (here or on another replica) holds the token ...
    assert channel.store.flow_claims.claim(token, "endpoint-turn") == "ours"
    handle(channel, rasa, message)
    assert rasa.turns == [] and not processed(channel)  # kept, not dropped
    # ... and then fails and gives it back: the replay of the nfm_reply makes the order.
    channel.store.flow_claims.release(token, "endpoint-turn")
    handle(channel, rasa, message)
    assert len(rasa.turns) == 1 and processed(channel)


def test_a_completion_replayed_after_the_order_was_made_is_not_told_the_form_expired(
    channel: WhatsAppInput, fake_graph: GraphApiEmulator
) -> None:
    rasa = FakeRasa()
    token = issue_token(CUSTOMER, SECRETS, now=time.time() - DEFAULT_TTL_SECONDS - 60)
    channel.store.flow_claims.claim(token, "endpoint-turn")
    channel.store.flow_claims.finish(token, "endpoint-turn")  # the order exists
    handle(channel, rasa, nfm_reply(completion(token)))  # the expired token's re-delivery
    assert rasa.turns == []
    assert texts_to(fake_graph, CUSTOMER) == []


def test_a_completion_turn_keeps_its_token_while_it_runs(channel: WhatsAppInput) -> None:
    """A turn slower than the claim's lease renews it: no other completion takes it over."""
    store, token = channel.store, issue_token(CUSTOMER, SECRETS)
    seen: list[str] = []

    async def slow_turn() -> None:
        await asyncio.sleep(0.5)
        seen.append(await asyncio.to_thread(store.flow_claims.claim, token, "reply", 0.15))

    claim = asyncio.run(complete_once(store, token, "endpoint", slow_turn, lease_seconds=0.15))
    assert (claim, seen) == ("ours", ["held"])
    assert store.flow_claims.is_done(token)
