"""The Flow data endpoint in-process: status codes, screens from the turn, completion once.

Requests are encrypted and signed as WhatsApp sends them; a stand-in for Rasa records the
turns and sends the screen an action would send. The store and the queues are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.signatures import hub_signature
from connectors.flows.crypto import decrypt_response, encrypt_request
from connectors.flows.endpoint import EXPIRED_MESSAGE, MAX_BODY_BYTES, FlowEndpoint
from connectors.jobs.customer_queue import CustomerQueues
from connectors.settings import FlowSettings
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from shop_contract.custom_messages import FLOW_RESPONSE_KEY
from shop_contract.flow_screens import CONTINUE_IN_CHAT_SCREEN, SUCCESS_SCREEN
from shop_contract.flow_tokens import TOKEN_PREFIX, issue_token

# 32 characters, the length of Meta's app secrets (and of PyJWT's minimum HS256 key).
OLD_SECRET = "old-app-secret".ljust(32, "0")
NEW_SECRET = "new-app-secret".ljust(32, "0")
APP_SECRETS = (OLD_SECRET, NEW_SECRET)
CONVERSATION = "15550001111"
CONTINUE_IN_CHAT = {"screen": CONTINUE_IN_CHAT_SCREEN, "data": {}}
QUANTITY = {"screen": "QUANTITY", "data": {"product": "mug", "quantities": [{"id": "1"}]}}


def success(token: str) -> dict[str, Any]:
    params = {"flow_token": token, "flow_ref": token, "product": "mug", "quantity": "2"}
    return {"screen": SUCCESS_SCREEN, "data": {"extension_message_response": {"params": params}}}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """The endpoint's key (RSA-2048 generation is slow: once per module)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'connector.db'}")


# --- stand-ins for the chat channel and for Rasa -------------------------------------------


class RecordingOutput(OutputChannel):
    """The chat: records every message it is asked to send."""

    def __init__(self, sent: list[tuple[str, dict[str, Any]]]) -> None:
        self.sent = sent

    @classmethod
    def name(cls) -> str:
        return "recording"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        self.sent.append((recipient_id, message))


@dataclass
class FakeRasa:
    """Records each turn; a Flow turn sends `chat_text` (if any), then `screen` after `delay`."""

    screen: dict[str, Any] | None = None
    delay: float = 0.0
    chat_text: str | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.turns.append((message.sender_id, message.text))
        if message.text.startswith(("/flow_completed", "/flow_error")):
            return
        await asyncio.sleep(self.delay)
        if self.chat_text is not None:
            await message.output_channel.send_response(message.sender_id, {"text": self.chat_text})
        if self.screen is not None:
            await message.output_channel.send_response(
                message.sender_id, {"custom": {FLOW_RESPONSE_KEY: self.screen}}
            )
        self.finished.append(message.text)

    def texts(self, intent: str) -> list[str]:
        """The texts of the turns run for `intent` in CONVERSATION."""
        prefix = f"/{intent}"
        return [
            text
            for sender, text in self.turns
            if sender == CONVERSATION and (text == prefix or text.startswith(prefix + "{"))
        ]


def entities(text: str, intent: str) -> dict[str, Any]:
    """The entities of Rasa's '/intent{...}' text form."""
    prefix = f"/{intent}"
    assert text.startswith(prefix + "{"), text
    found: dict[str, Any] = json.loads(text[len(prefix) :])
    return found


# --- requests as WhatsApp sends them -------------------------------------------------------


@dataclass(frozen=True)
class FakeRequest:
    """What FlowEndpoint.handle reads of a sanic Request."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Sent:
    """An encrypted request and what the client keeps to read the answer."""

    document: dict[str, str]
    aes_key: bytes
    iv: bytes

    @property
    def body(self) -> bytes:
        return json.dumps(self.document).encode()

    def with_field(self, name: str, value: str) -> bytes:
        return json.dumps({**self.document, name: value}).encode()


def flow_payload(
    action: str,
    token: str | None,
    screen: str | None = None,
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"version": "3.0", "action": action, **extra}
    if token is not None:
        payload["flow_token"] = token
    if screen is not None:
        payload["screen"] = screen
    if data is not None:
        payload["data"] = data
    return payload


def signed(body: bytes, secret: str = NEW_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(body, secret)}


@dataclass
class Shop:
    """One FlowEndpoint with its real store and queues, a fake Rasa and a recording chat."""

    endpoint: FlowEndpoint
    queues: CustomerQueues
    rasa: FakeRasa
    chat: list[tuple[str, dict[str, Any]]]
    public_key: rsa.RSAPublicKey
    foreign_key: rsa.RSAPublicKey  # somebody else's: requests the endpoint cannot decrypt
    token: str

    def encrypt(self, payload: dict[str, Any], public_key: rsa.RSAPublicKey | None = None) -> Sent:
        document, aes_key, iv = encrypt_request(payload, public_key or self.public_key)
        return Sent(document, aes_key, iv)

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> HTTPResponse:
        request = FakeRequest(body, signed(body) if headers is None else headers)
        return await self.endpoint.handle(cast(Request, request), self.rasa)

    async def send(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Posts `payload` encrypted and signed; the status and the decrypted answer."""
        sent = self.encrypt(payload)
        reply = await self.post(sent.body)
        return reply.status, read(reply, sent)


def read(reply: HTTPResponse, sent: Sent) -> dict[str, Any]:
    assert reply.body, f"status {reply.status} without a body"
    return decrypt_response(reply.body.decode("ascii"), sent.aes_key, sent.iv)


MakeShop = Callable[..., Shop]


@pytest.fixture
def make_shop(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, store: ConnectorStore
) -> MakeShop:
    """Builds a Shop inside the running event loop."""

    def build(
        rasa: FakeRasa | None = None,
        budget: float = 3.0,
        private_key: rsa.RSAPrivateKey | None = key,
    ) -> Shop:
        chat: list[tuple[str, dict[str, Any]]] = []
        queues = CustomerQueues()
        endpoint = FlowEndpoint(
            FlowSettings(private_key, budget),
            APP_SECRETS,
            store,
            queues,
            lambda: RecordingOutput(chat),
        )
        token = issue_token(CONVERSATION, APP_SECRETS)
        return Shop(
            endpoint,
            queues,
            rasa or FakeRasa(),
            chat,
            key.public_key(),
            other_key.public_key(),
            token,
        )

    return build


# --- ping, and the turns Rasa runs ---------------------------------------------------------


def test_ping_is_answered_active_without_a_turn(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[int, dict[str, Any], FakeRasa]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        status, answer = await shop.send(flow_payload("ping", None))
        await shop.queues.drain()
        return status, answer, shop.rasa

    status, answer, rasa = asyncio.run(scenario())

    assert (status, answer) == (200, {"data": {"status": "active"}})
    assert rasa.turns == []


def test_init_becomes_flow_init_in_the_tokens_conversation(make_shop: MakeShop) -> None:
    first = {"screen": "PRODUCT", "data": {"products": []}}

    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=first))
        status, answer = await shop.send(flow_payload("INIT", shop.token))
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, first)
    [(sender, text)] = shop.rasa.turns
    assert sender == CONVERSATION
    found = entities(text, "flow_init")
    assert found["flow_token"] == shop.token
    assert found.get("flow_screen") is None
    assert found["flow_data"] == {}


def test_back_becomes_flow_back_with_its_screen(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        _, answer = await shop.send(flow_payload("BACK", shop.token, "QUANTITY"))
        await shop.queues.drain()
        return answer, shop

    answer, shop = asyncio.run(scenario())

    assert answer == QUANTITY
    [text] = shop.rasa.texts("flow_back")
    assert entities(text, "flow_back")["flow_screen"] == "QUANTITY"


def test_data_exchange_answers_exactly_the_screen_the_actions_sent(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        status, answer = await shop.send(
            flow_payload("data_exchange", shop.token, "PRODUCT", {"product": "mug"})
        )
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, QUANTITY)
    [text] = shop.rasa.texts("flow_data_exchange")
    assert entities(text, "flow_data_exchange") == {
        "flow_token": shop.token,
        "flow_screen": "PRODUCT",
        "flow_data": {"product": "mug"},
    }
    assert shop.rasa.texts("flow_completed") == []


def test_a_success_screen_is_answered_and_completes_the_flow_once(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[dict[str, Any], Shop]:
        shop = make_shop()
        shop.rasa.screen = success(shop.token)
        _, answer = await shop.send(flow_payload("data_exchange", shop.token, "SUMMARY", {}))
        await shop.queues.drain()
        return answer, shop

    answer, shop = asyncio.run(scenario())

    assert answer == success(shop.token)
    [completed] = shop.rasa.texts("flow_completed")
    assert entities(completed, "flow_completed") == {
        "flow_token": shop.token,
        "flow_data": {"flow_ref": shop.token, "product": "mug", "quantity": "2"},
    }


def test_the_same_success_twice_completes_the_flow_once(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], Shop]:
        shop = make_shop()
        shop.rasa.screen = success(shop.token)
        summary = flow_payload("data_exchange", shop.token, "SUMMARY", {})
        answers = [(await shop.send(summary))[1] for _ in range(2)]
        await shop.queues.drain()
        return answers, shop

    answers, shop = asyncio.run(scenario())

    assert answers == [success(shop.token)] * 2
    assert len(shop.rasa.texts("flow_data_exchange")) == 2
    assert len(shop.rasa.texts("flow_completed")) == 1


# --- the turn budget -----------------------------------------------------------------------


Overrun = tuple[dict[str, Any], float, list[str], Shop]


def overrun(make_shop: MakeShop, late_screen: Callable[[str], dict[str, Any]]) -> Overrun:
    """A 1 s turn against a 0.2 s budget: (answer, seconds taken, finished before drain, shop)."""

    async def scenario() -> Overrun:
        shop = make_shop(FakeRasa(delay=1.0), budget=0.2)
        shop.rasa.screen = late_screen(shop.token)
        started = time.monotonic()
        _, answer = await shop.send(flow_payload("data_exchange", shop.token, "SUMMARY", {}))
        took = time.monotonic() - started
        finished_before_drain = list(shop.rasa.finished)
        await shop.queues.drain()
        return answer, took, finished_before_drain, shop

    return asyncio.run(scenario())


def test_an_overrun_hands_over_to_the_chat_and_the_turn_still_finishes(
    make_shop: MakeShop,
) -> None:
    answer, took, finished_before_drain, shop = overrun(make_shop, lambda _: QUANTITY)

    assert answer == CONTINUE_IN_CHAT
    assert 0.2 <= took < 0.5
    assert finished_before_drain == []
    assert len(shop.rasa.finished) == 1
    assert shop.rasa.texts("flow_completed") == []


def test_a_late_success_still_completes_the_flow_once(make_shop: MakeShop) -> None:
    answer, took, _, shop = overrun(make_shop, success)

    assert answer == CONTINUE_IN_CHAT
    assert took < 0.5
    assert len(shop.rasa.texts("flow_completed")) == 1


def test_a_turn_without_a_screen_hands_over_to_the_chat(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=None))
        status, answer = await shop.send(flow_payload("data_exchange", shop.token, "PRODUCT", {}))
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, CONTINUE_IN_CHAT)
    assert len(shop.rasa.finished) == 1


def test_other_messages_of_the_turn_go_to_the_chat(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY, chat_text="hi"))
        _, answer = await shop.send(flow_payload("data_exchange", shop.token, "PRODUCT", {}))
        await shop.queues.drain()
        return answer, shop

    answer, shop = asyncio.run(scenario())

    assert answer == QUANTITY
    assert shop.chat == [(CONVERSATION, {"text": "hi"})]


# --- notifications and unknown actions ----------------------------------------------------


def test_an_error_notification_is_acknowledged_and_becomes_flow_error(
    make_shop: MakeShop,
) -> None:
    error = {"error": "INVALID_SCREEN", "error_message": "screen QUANTITY is not allowed"}

    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        status, answer = await shop.send(
            flow_payload("data_exchange", shop.token, "PRODUCT", error)
        )
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, {"data": {"acknowledged": True}})
    [text] = shop.rasa.texts("flow_error")
    assert entities(text, "flow_error")["flow_data"] == error
    assert shop.rasa.texts("flow_data_exchange") == []


def test_an_unknown_action_is_acknowledged_without_a_turn(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        status, answer = await shop.send(flow_payload("SOMETHING_NEW", shop.token, "PRODUCT"))
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, {"data": {"acknowledged": True}})
    assert shop.rasa.turns == []


# --- refusals: 432 signature, 421 decryption, 427 token, 413 size -------------------------


Build = Callable[[Shop], tuple[bytes, dict[str, str] | None]]


def refusal(make_shop: MakeShop, build: Build, **options: Any) -> tuple[HTTPResponse, Shop]:
    """Posts the (body, headers) `build` makes; headers None means signed correctly."""

    async def scenario() -> tuple[HTTPResponse, Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY), **options)
        reply = await shop.post(*build(shop))
        await shop.queues.drain()
        return reply, shop

    return asyncio.run(scenario())


def data_exchange(shop: Shop, **extra: Any) -> Sent:
    return shop.encrypt(flow_payload("data_exchange", shop.token, "PRODUCT", {}, **extra))


def with_headers(headers: Callable[[bytes], dict[str, str]]) -> Build:
    """A good request whose signature header is `headers(body)`."""

    def build(shop: Shop) -> tuple[bytes, dict[str, str] | None]:
        body = data_exchange(shop).body
        return body, headers(body)

    return build


SIGNATURE_FAILURES: dict[str, Build] = {
    "missing header": with_headers(lambda _: {}),
    "empty header": with_headers(lambda _: {"X-Hub-Signature-256": ""}),
    "wrong secret": with_headers(lambda body: signed(body, "another-secret")),
    "signed for another body": with_headers(lambda body: signed(body + b" ")),
    "hex without prefix": with_headers(
        lambda body: {"X-Hub-Signature-256": hub_signature(body, NEW_SECRET)[len("sha256=") :]}
    ),
}


@pytest.mark.parametrize("build", SIGNATURE_FAILURES.values(), ids=SIGNATURE_FAILURES.keys())
def test_a_bad_signature_is_432(make_shop: MakeShop, build: Build) -> None:
    reply, shop = refusal(make_shop, build)

    assert reply.status == 432
    assert shop.rasa.turns == []


def test_a_body_signed_with_the_old_secret_is_accepted_during_rotation(
    make_shop: MakeShop,
) -> None:
    reply, shop = refusal(make_shop, with_headers(lambda body: signed(body, OLD_SECRET)))

    assert reply.status == 200
    assert len(shop.rasa.texts("flow_data_exchange")) == 1


def damaged_data(change: Callable[[str], str]) -> Build:
    """A good request whose base64 `encrypted_flow_data` is changed, then signed."""

    def build(shop: Shop) -> tuple[bytes, dict[str, str] | None]:
        sent = data_exchange(shop)
        return sent.with_field(
            "encrypted_flow_data", change(sent.document["encrypted_flow_data"])
        ), None

    return build


def other_char(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


UNDECRYPTABLE: dict[str, Build] = {
    "not json": lambda _: (b"encrypted_flow_data=...", None),
    "not utf-8": lambda _: (b"\xff\xfe{}", None),
    "json list": lambda shop: (json.dumps([data_exchange(shop).document]).encode(), None),
    "empty object": lambda _: (b"{}", None),
    "bad base64": lambda shop: (
        data_exchange(shop).with_field("initial_vector", "%%%not base64%%%"),
        None,
    ),
    "wrong rsa key": lambda shop: (
        shop.encrypt(flow_payload("ping", None), shop.foreign_key).body,
        None,
    ),
    "truncated data": damaged_data(lambda data: data[:-8]),
    "bad tag": damaged_data(lambda data: other_char(data, len(data) - 6)),
}


@pytest.mark.parametrize("build", UNDECRYPTABLE.values(), ids=UNDECRYPTABLE.keys())
def test_an_undecryptable_request_is_421_with_an_empty_body(
    make_shop: MakeShop, build: Build
) -> None:
    reply, shop = refusal(make_shop, build)

    assert reply.status == 421
    assert reply.body == b""
    assert shop.rasa.turns == []


def test_without_a_private_key_every_request_is_421(make_shop: MakeShop) -> None:
    def ping(shop: Shop) -> tuple[bytes, dict[str, str] | None]:
        return shop.encrypt(flow_payload("ping", None)).body, None

    reply, shop = refusal(make_shop, ping, private_key=None)

    assert reply.status == 421
    assert reply.body == b""
    assert shop.rasa.turns == []


def token_refusal(
    make_shop: MakeShop, payload: Callable[[Shop], dict[str, Any]]
) -> tuple[int, dict[str, Any], FakeRasa]:
    """The status, the decrypted answer and the turns for a request with a refused token."""

    async def scenario() -> tuple[int, dict[str, Any], FakeRasa]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        status, answer = await shop.send(payload(shop))
        await shop.queues.drain()
        return status, answer, shop.rasa

    return asyncio.run(scenario())


def forged(token: str) -> str:
    body = token[len(TOKEN_PREFIX) :]
    return TOKEN_PREFIX + other_char(body, len(body) // 2)


def exchange_with(token: str | None, **extra: Any) -> dict[str, Any]:
    return flow_payload("data_exchange", token, "PRODUCT", {"product": "mug"}, **extra)


def meta_signature(flow_token: str, secret: str, expires_at: int) -> str:
    """A flow_token_signature as Meta makes it: HS256 with the app secret."""
    return jwt.encode({"flow_token": flow_token, "exp": expires_at}, secret, algorithm="HS256")


LATER = int(time.time()) + 24 * 3600  # valid however long the suite runs
REFUSED_TOKENS: dict[str, Callable[[Shop], dict[str, Any]]] = {
    "expired": lambda _: exchange_with(
        issue_token(CONVERSATION, APP_SECRETS, ttl_seconds=60, now=time.time() - 120)
    ),
    "forged": lambda shop: exchange_with(forged(shop.token)),
    "another secret": lambda _: exchange_with(issue_token(CONVERSATION, ("another-shop",))),
    "missing": lambda _: exchange_with(None),
    "not a string": lambda _: {**exchange_with(None), "flow_token": 12345},
    "signature with another secret": lambda shop: exchange_with(
        shop.token,
        flow_token_signature=meta_signature(shop.token, "another-app-secret".ljust(32, "0"), LATER),
    ),
    "signature for another token": lambda shop: exchange_with(
        shop.token,
        flow_token_signature=meta_signature(
            issue_token(CONVERSATION, APP_SECRETS), NEW_SECRET, LATER
        ),
    ),
    "expired signature": lambda shop: exchange_with(
        shop.token,
        flow_token_signature=meta_signature(shop.token, NEW_SECRET, int(time.time()) - 60),
    ),
    "signature alg none": lambda shop: exchange_with(
        shop.token,
        flow_token_signature=jwt.encode(
            {"flow_token": shop.token, "exp": LATER}, "", algorithm="none"
        ),
    ),
    "signature with a lone surrogate": lambda shop: exchange_with(
        shop.token, flow_token_signature="\ud800.é.é"
    ),
    "signature garbage": lambda shop: exchange_with(shop.token, flow_token_signature="a.b.c"),
    "signature not a string": lambda shop: exchange_with(shop.token, flow_token_signature=42),
}


@pytest.mark.parametrize("payload", REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_a_refused_token_is_427_with_an_encrypted_error_msg(
    make_shop: MakeShop, payload: Callable[[Shop], dict[str, Any]]
) -> None:
    status, answer, rasa = token_refusal(make_shop, payload)

    assert status == 427
    assert answer == {"error_msg": EXPIRED_MESSAGE}
    assert rasa.turns == []


def test_a_valid_flow_token_signature_is_accepted(make_shop: MakeShop) -> None:
    async def scenario() -> tuple[int, dict[str, Any], Shop]:
        shop = make_shop(FakeRasa(screen=QUANTITY))
        signature = meta_signature(shop.token, NEW_SECRET, int(time.time()) + 60)
        status, answer = await shop.send(exchange_with(shop.token, flow_token_signature=signature))
        await shop.queues.drain()
        return status, answer, shop

    status, answer, shop = asyncio.run(scenario())

    assert (status, answer) == (200, QUANTITY)
    assert len(shop.rasa.texts("flow_data_exchange")) == 1


def test_a_body_over_the_size_limit_is_413(make_shop: MakeShop) -> None:
    reply, shop = refusal(make_shop, lambda _: (b"{" + b" " * MAX_BODY_BYTES + b"}", None))

    assert reply.status == 413
    assert shop.rasa.turns == []


# --- completion: the token's owner, and a failed completion turn -----------------------------


def test_a_success_screen_with_another_customers_token_completes_nothing(
    make_shop: MakeShop, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = issue_token("15550009999", APP_SECRETS)

    async def scenario() -> Shop:
        shop = make_shop(FakeRasa(screen=success(foreign)))
        await shop.send(flow_payload("data_exchange", shop.token, "SUMMARY", {"product": "mug"}))
        await shop.queues.drain()
        return shop

    shop = asyncio.run(scenario())
    assert shop.rasa.texts("flow_completed") == []
    assert "flow completion refused: flow token issued for another conversation" in caplog.text
    assert shop.endpoint.store.flow_claims.claim(foreign, "test") == "ours"  # not used up either


@dataclass
class FailingCompletion(FakeRasa):
    """The completion turn fails the first `failures` times (the action server is down)."""

    failures: int = 1

    async def __call__(self, message: UserMessage) -> None:
        await super().__call__(message)
        if message.text.startswith("/flow_completed") and self.failures:
            self.failures -= 1
            raise ConnectionError("action server unreachable")


def test_a_failed_completion_turn_gives_the_token_back_for_the_next_completion(
    make_shop: MakeShop,
) -> None:
    async def scenario() -> Shop:
        shop = make_shop(FailingCompletion(screen=success("")))
        assert isinstance(shop.rasa, FailingCompletion)
        shop.rasa.screen = success(shop.token)
        for _ in range(3):  # the Flow's last screen submitted again after the failure, twice
            await shop.send(flow_payload("data_exchange", shop.token, "SUMMARY", {"a": "b"}))
            await shop.queues.drain()
        return shop

    shop = asyncio.run(scenario())
    assert len(shop.rasa.texts("flow_completed")) == 2  # failed once, then made once
    assert shop.endpoint.store.flow_claims.claim(shop.token, "test") == "done"
