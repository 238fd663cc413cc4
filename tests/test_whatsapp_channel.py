"""The WhatsApp channel end to end: signed webhooks into the real bot, replies out through
the fake Graph API (a real HTTP server), with the real Rasa server and action server."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.edge.signatures import hub_signature
from connectors.flows.crypto import decrypt_response, encrypt_request
from connectors.storage.keys import ENV_VAR
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.processes import ROOT
from shop_contract.flow_tokens import issue_token
from tests.support.at_rest import found_in_sqlite_files, found_in_tables
from tests.support.chat import WAIT_SECONDS, Chat, text_of

pytestmark = pytest.mark.live  # every test here talks to the running bot

OLD_SECRET = secrets.token_hex(16)
NEW_SECRET = secrets.token_hex(16)
VERIFY_TOKEN = secrets.token_urlsafe(12)
KEY_PASSPHRASE = secrets.token_urlsafe(12)
FLOW_ID = "1234567890123456"
_customers = iter(range(15550100000, 15550199999))
# What this module's customers send that identifies them (numbers, ids, names, addresses).
PERSONAL_DATA = {
    "customer numbers": "155501",
    "business-scoped ids": "US.",
    "profile names": "Test Customer",
    "names from the Flow": "A Customer",
    "addresses": "Main St",
    "message ids (base64 holding the number)": "wamid.",
}


def new_customer() -> str:
    return str(next(_customers))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whatsapp")


@pytest.fixture(scope="module")
def flow_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator, workdir: Path, flow_key: rsa.RSAPrivateKey
) -> Iterator[LiveBot]:
    key_file = workdir / "flow_key.pem"
    key_file.write_bytes(
        flow_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode()),
        )
    )
    env = {
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": f"{OLD_SECRET},{NEW_SECRET}",
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_API_BASE": graph_api.base_url,
        "WHATSAPP_NOTIFICATION_TEMPLATE": "order_update",
        "WHATSAPP_FLOW_ID": FLOW_ID,
        "WHATSAPP_FLOW_PRIVATE_KEY": str(key_file),
        "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE": KEY_PASSPHRASE,
    }
    live = start_bot(workdir, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def store(bot: LiveBot, workdir: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{workdir / 'bot.db'}")


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    """Signs with the new secret; `replace(chat, app_secret=…)` signs with another."""
    return Chat(bot, graph_api, NEW_SECRET)


# --- verification handshake ---------------------------------------------------------------


def test_verification_echoes_the_challenge_only_for_the_right_token(chat: Chat) -> None:
    ok = requests.get(
        chat.webhook,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
        timeout=5,
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {},
    ):
        assert requests.get(chat.webhook, params=params, timeout=5).status_code == 403


def test_health_reports_the_database_and_the_backlog(bot: LiveBot) -> None:
    health = requests.get(f"{bot.rasa_url}/webhooks/whatsapp/", timeout=5).json()
    assert (health["status"], health["database"]) == ("ok", "ok")
    assert {"pending_messages", "pending_stripe_events", "in_flight"} <= set(health)
    assert health["oldest_pending_messages_seconds"] >= 0


# --- signatures ---------------------------------------------------------------------------


def test_unsigned_and_wrongly_signed_posts_are_refused_and_not_processed(chat: Chat) -> None:
    customer = new_customer()
    document = meta.notification([meta.text(customer, "hello")], [meta.contact(customer)])
    body = json.dumps(document).encode()
    missing = requests.post(
        chat.webhook, data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert missing.status_code == 401
    assert replace(chat, app_secret="not-the-secret").post(document).status_code == 403
    _, headers = meta.signed(document, NEW_SECRET)
    reserialised = json.dumps(document, indent=2).encode()  # same JSON, other bytes
    assert (
        requests.post(chat.webhook, data=reserialised, headers=headers, timeout=5).status_code
        == 403
    )
    chat.idle()
    assert chat.messages(customer) == []


def test_both_secrets_work_during_rotation(chat: Chat) -> None:
    customer = new_customer()
    for secret in (OLD_SECRET, NEW_SECRET):
        document = meta.notification([meta.text(customer, "hi")], [meta.contact(customer)])
        assert replace(chat, app_secret=secret).post(document).status_code == 200
    chat.wait(customer, 2)


def test_bad_bodies_get_clear_status_codes(chat: Chat) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    for raw in (b"", b"not json", b"[1, 2]", b'{"entry": "nope"}', b"\xff\xfe\x00", nested):
        headers = {"X-Hub-Signature-256": meta.hub_signature(raw, NEW_SECRET)}
        assert requests.post(chat.webhook, data=raw, headers=headers, timeout=5).status_code == 400
    huge = b'{"entry": []' + b" " * (2 * 1024 * 1024) + b"}"
    headers = {"X-Hub-Signature-256": meta.hub_signature(huge, NEW_SECRET)}
    assert requests.post(chat.webhook, data=huge, headers=headers, timeout=10).status_code == 413


def test_other_content_types_and_odd_texts_are_handled(chat: Chat) -> None:
    customer = new_customer()
    document = meta.notification([meta.text(customer, "hello")], [meta.contact(customer)])
    body, headers = meta.signed(document, NEW_SECRET)
    headers["Content-Type"] = "text/plain"  # the signature, not the header, is what counts
    assert requests.post(chat.webhook, data=body, headers=headers, timeout=5).status_code == 200
    chat.wait(customer, 1)
    for n, text in enumerate(["ما هو الكتالوج؟ 🛒☕", "קטלוג בבקשה", "☕" * 50, "x" * 10_000], 1):
        chat.say(customer, text)
        reply = chat.wait(customer, 1 + n)[n]  # every text gets an answer, none crashes
        assert reply["to"] == customer


# --- messages in, replies out -------------------------------------------------------------


def test_text_gets_read_receipt_typing_and_an_answer(chat: Chat) -> None:
    customer = new_customer()
    incoming = chat.say(customer, "hello")
    (greeting,) = chat.wait(customer, 1)
    assert greeting["messaging_product"] == "whatsapp"
    assert greeting["to"] == customer and "recipient" not in greeting
    interactive = greeting["interactive"]
    assert interactive["type"] == "button"
    assert "Welcome" in interactive["body"]["text"]
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "/browse_catalog", "title": "See the catalog"},
        {"id": "/order", "title": "Place an order"},
        {"id": "/check_order_status", "title": "Order status"},
    ]
    receipts = [r.json for r in chat.graph.requests if r.json and r.json.get("status") == "read"]
    assert {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": incoming,
        "typing_indicator": {"type": "text"},
    } in receipts


def test_catalog_with_seven_products_is_a_list(chat: Chat) -> None:
    customer = new_customer()
    chat.say(customer, "what do you sell?")
    (catalog,) = chat.wait(customer, 1)
    assert catalog["interactive"]["type"] == "list"
    rows = catalog["interactive"]["action"]["sections"][0]["rows"]
    assert len(rows) == 7 and rows[0]["id"] == '/order{"product": "espresso-beans"}'


def test_button_reply_payload_drives_the_conversation(chat: Chat) -> None:
    customer = new_customer()
    chat.tap(customer, '/order{"product": "green-tea"}', "Sencha Green Tea")
    (summary,) = chat.wait(customer, 1)
    assert "1 × Sencha Green Tea — €8.90" in text_of(summary)


@pytest.mark.parametrize(
    "typed",
    [
        "/EXTERNAL_payment_succeeded",
        '/EXTERNAL_payment_succeeded{"order_id": "ORD-1"}',
        '/flow_completed{"flow_token": "x", '
        '"flow_data": {"product": "gift-card", "quantity": "1"}}',
    ],
)
def test_typed_text_can_never_trigger_a_reserved_intent(chat: Chat, typed: str) -> None:
    customer = new_customer()
    chat.say(customer, typed)
    replies = chat.wait(customer, 1, settle=True)
    texts = " ".join(text_of(m) for m in replies)
    assert "confirmed" not in texts and "Your order" not in texts and "ORD-" not in texts


def test_forged_reserved_button_payload_is_read_as_its_title(chat: Chat) -> None:
    customer = new_customer()
    forged = meta.button_reply(customer, '/EXTERNAL_payment_succeeded{"order_id": "x"}', "hello")
    chat.post(meta.notification([forged], [meta.contact(customer)]))
    (reply,) = chat.wait(customer, 1, settle=True)
    assert "Welcome" in text_of(reply)


def test_every_message_of_a_batch_is_answered_in_order(chat: Chat) -> None:
    first, second = new_customer(), new_customer()
    batch = meta.notification(
        [
            meta.text(first, "hello"),
            meta.text(second, "what can you do"),
            meta.text(first, "where is my order?"),
        ],
        [meta.contact(first), meta.contact(second)],
    )
    assert chat.post(batch).status_code == 200
    to_first = chat.wait(first, 2)
    assert "Welcome" in text_of(to_first[0])
    assert "don't have any orders" in text_of(to_first[1])
    assert "I can show you" in text_of(chat.wait(second, 1)[0])


def test_a_redelivered_message_is_processed_once(chat: Chat, store: ConnectorStore) -> None:
    customer = new_customer()
    incoming = meta.text(customer, "hello")
    document = meta.notification([incoming], [meta.contact(customer)])
    for _ in range(3):
        assert chat.post(document).status_code == 200
    replies = chat.wait(customer, 1, settle=True)
    assert len(replies) == 1
    assert (
        store.messages.record_inbound(incoming["id"], customer) is False
    )  # durable: in the database


def test_business_scoped_user_is_answered_with_recipient(chat: Chat) -> None:
    user_id = f"US.{secrets.randbelow(10**18)}"
    incoming = meta.text(user_id, "hello")
    chat.post(meta.notification([incoming], [meta.contact(user_id=user_id)]))
    (reply,) = chat.wait(user_id, 1)
    assert reply["recipient"] == user_id and "to" not in reply


def test_unreadable_media_gets_a_polite_answer(chat: Chat) -> None:
    customer = new_customer()
    sticker = meta.message(customer, "sticker", {"id": "media-1", "mime_type": "image/webp"})
    chat.post(meta.notification([sticker], [meta.contact(customer)]))
    (reply,) = chat.wait(customer, 1)
    assert "can't read that kind of message" in text_of(reply)


def test_image_caption_is_read_as_text(chat: Chat) -> None:
    customer = new_customer()
    photo = meta.message(customer, "image", {"id": "media-2", "caption": "show me the catalog"})
    chat.post(meta.notification([photo], [meta.contact(customer)]))
    (reply,) = chat.wait(customer, 1)
    assert "Espresso Beans" in json.dumps(reply)


def test_flow_completion_makes_one_order_per_token(chat: Chat) -> None:
    customer = new_customer()
    response = {
        "flow_token": issue_token(customer, (OLD_SECRET, NEW_SECRET)),
        "product": "gift-card",
        "quantity": "2",
        "name": "",
        "street": "",
        "postal_code": "",
        "city": "",
    }
    for _ in range(2):  # the same completion twice, in two different messages
        chat.post(meta.notification([meta.nfm_reply(customer, response)], [meta.contact(customer)]))
    replies = chat.wait(customer, 1, settle=True)
    assert len(replies) == 1
    assert "2 × Gift Card 25 EUR — €50.00" in text_of(replies[0])  # then: no Stripe here
    assert "isn't set up" in text_of(replies[0])


def test_statuses_are_recorded_against_our_message(
    chat: Chat, store: ConnectorStore, graph_api: GraphApiEmulator
) -> None:
    customer = new_customer()
    chat.say(customer, "hello")
    chat.wait(customer, 1)
    record = wait_for_outbound(store, graph_api, customer)
    for state in ("sent", "delivered", "read", "delivered"):
        chat.post(meta.notification(statuses=[meta.status(record, state, customer)]))
    deadline = time.monotonic() + WAIT_SECONDS
    while (current := store.messages.outbound(record)) is None or current.status != "read":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    chat.idle()
    final = store.messages.outbound(record)
    assert final is not None and final.status == "read"  # a late 'delivered' does not undo it


def wait_for_outbound(store: ConnectorStore, graph: GraphApiEmulator, customer: str) -> str:
    """The id Meta gave our first message to `customer`, once the bot has recorded it (as
    its digest: the id itself holds the customer's number)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        sent = [m.id for m in graph.accepted() if m.recipient == customer]
        if sent and store.messages.outbound(sent[0]) is not None:
            return sent[0]
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_notification_refused_for_the_window_is_resent_as_the_template(
    chat: Chat, store: ConnectorStore
) -> None:
    customer = new_customer()
    message_id = f"wamid.NOTIFY{secrets.token_hex(4)}"
    store.messages.record_outbound(
        message_id, customer, "notification", "Order ORD-7 is confirmed."
    )
    failed = meta.status(message_id, "failed", customer, code=131047)
    assert chat.post(meta.notification(statuses=[failed])).status_code == 200
    (template,) = chat.wait(customer, 1)
    assert template["template"]["name"] == "order_update"
    parameters = template["template"]["components"][0]["parameters"]
    assert parameters == [{"type": "text", "text": "Order ORD-7 is confirmed."}]
    record = store.messages.outbound(message_id)
    assert record is not None and record.status == "failed"


# --- the order Flow -----------------------------------------------------------------------


def flow_call(
    bot: LiveBot, key: rsa.RSAPrivateKey, payload: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    """One Flow data request exactly as the WhatsApp client makes it; the decrypted answer."""
    body, aes_key, iv = encrypt_request(payload, key.public_key())
    raw = json.dumps(body).encode()
    answer = requests.post(
        f"{bot.rasa_url}/webhooks/whatsapp/flow",
        data=raw,
        headers={"X-Hub-Signature-256": hub_signature(raw, NEW_SECRET)},
        timeout=15,
    )
    if answer.status_code not in (200, 427):
        return answer.status_code, None
    return answer.status_code, decrypt_response(answer.text, aes_key, iv)


def test_an_order_through_the_flow_ends_in_one_order(
    bot: LiveBot, chat: Chat, flow_key: rsa.RSAPrivateKey
) -> None:
    customer = new_customer()
    chat.say(customer, "I want to place an order")
    (flow_message,) = chat.wait(customer, 1)
    parameters = flow_message["interactive"]["action"]["parameters"]
    assert flow_message["interactive"]["type"] == "flow"
    assert parameters["flow_id"] == FLOW_ID and parameters["flow_message_version"] == "3"
    assert parameters["flow_action"] == "navigate"
    assert parameters["flow_action_payload"]["screen"] == "PRODUCT"
    token = parameters["flow_token"]
    assert customer not in token

    def exchange(screen: str | None, data: dict[str, Any], action: str = "data_exchange") -> Any:
        payload: dict[str, Any] = {"version": "3.0", "action": action, "flow_token": token}
        if screen:
            payload["screen"] = screen
            payload["data"] = data
        status, answer = flow_call(bot, flow_key, payload)
        assert status == 200, status
        return answer

    assert exchange(None, {}, "ping") == {"data": {"status": "active"}}
    assert exchange(None, {}, "INIT")["screen"] == "PRODUCT"
    cart = exchange("PRODUCT", {"cart": "", "product": "espresso-beans", "quantity": "2"})
    assert cart["screen"] == "PRODUCT" and cart["data"]["cart"] == "espresso-beans:2"
    assert exchange("PRODUCT", cart["data"], "BACK")["data"]["cart"] == "espresso-beans:2"
    chosen = {"cart": "espresso-beans:2", "product": "green-tea", "quantity": "40", "then": "add"}
    wrong = exchange("PRODUCT", chosen)
    assert wrong["data"]["cart"] == "espresso-beans:2"
    assert "between 1 and 10" in wrong["data"]["error_message"]
    delivery = exchange("PRODUCT", {**chosen, "quantity": "1", "then": "checkout"})
    assert delivery["screen"] == "DELIVERY"
    cart_value = delivery["data"]["cart"]
    assert cart_value == "espresso-beans:2,green-tea:1"
    address = {"name": "A Customer", "street": "Main St 1", "postal_code": "1000", "city": "Town"}
    filled = {"cart": cart_value, **address, "country": "DE"}
    summary = exchange("DELIVERY", filled)
    assert summary["screen"] == "SUMMARY" and summary["data"]["total_text"] == "Total: €39.60"
    done = exchange("SUMMARY", filled)
    assert done["screen"] == "SUCCESS"
    params = done["data"]["extension_message_response"]["params"]
    assert params["flow_token"] == token and params["cart"] == cart_value

    # The order continues in the chat; the same completion also arrives as nfm_reply.
    chat.post(meta.notification([meta.nfm_reply(customer, params)], [meta.contact(customer)]))
    messages = chat.wait(customer, 2, settle=True)
    assert len(messages) == 2
    assert "2 × Espresso Beans — €25.80\n1 × Sencha Green Tea — €8.90" in text_of(messages[1])


def test_flow_requests_with_bad_signature_key_or_token_are_refused(
    bot: LiveBot, flow_key: rsa.RSAPrivateKey
) -> None:
    url = f"{bot.rasa_url}/webhooks/whatsapp/flow"
    body, _, _ = encrypt_request({"version": "3.0", "action": "ping"}, flow_key.public_key())
    raw = json.dumps(body).encode()
    assert requests.post(url, data=raw, timeout=5).status_code == 432
    nested = b'{"encrypted_flow_data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused = requests.post(
        url,
        data=nested,
        headers={"X-Hub-Signature-256": hub_signature(nested, NEW_SECRET)},
        timeout=5,
    )
    assert (refused.status_code, refused.content) == (421, b"")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign, _, _ = encrypt_request({"version": "3.0", "action": "ping"}, other.public_key())
    raw = json.dumps(foreign).encode()
    refused = requests.post(
        url, data=raw, headers={"X-Hub-Signature-256": hub_signature(raw, NEW_SECRET)}, timeout=5
    )
    assert (refused.status_code, refused.content) == (421, b"")
    status, answer = flow_call(
        bot, flow_key, {"version": "3.0", "action": "INIT", "flow_token": "ft1.forged"}
    )
    assert status == 427 and answer is not None and "expired" in answer["error_msg"]


def test_operator_flow_request_checks_the_live_endpoint(bot: LiveBot, workdir: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WHATSAPP_APP_SECRET": f"{OLD_SECRET},{NEW_SECRET}",
        "WHATSAPP_FLOW_PRIVATE_KEY": str(workdir / "flow_key.pem"),
        "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE": KEY_PASSPHRASE,
    }
    url = f"{bot.rasa_url}/webhooks/whatsapp/flow"
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "scripts.flow_cli", "flow-request"]
    ping = subprocess.run(
        [*command, "--url", url], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.startswith("HTTP 200") and '"status": "active"' in ping.stdout
    init = subprocess.run(
        [*command, "--url", url, "--action", "INIT", "--to", new_customer()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    assert '"screen": "PRODUCT"' in init.stdout


def test_the_logs_hold_no_personal_data_or_secrets(
    bot: LiveBot, graph_api: GraphApiEmulator
) -> None:
    """Runs last in this module: everything above (orders, the Flow with a name and an
    address, business-scoped ids, bad requests) has been logged by now."""
    logs = "\n".join(path.read_text(errors="replace") for path in bot.logs)
    assert "replaying" not in logs or "c-" in logs  # customers appear only as references
    forbidden = {
        **PERSONAL_DATA,
        "the app secret": NEW_SECRET,
        "the old app secret": OLD_SECRET,
        "the access token": graph_api.access_token,
        "the verify token": VERIFY_TOKEN,
        "the key passphrase": KEY_PASSPHRASE,
        "the encryption key": os.environ[ENV_VAR].split(":", 1)[1],
    }
    leaked = [what for what, value in forbidden.items() if value in logs]
    assert leaked == [], f"the logs contain {', '.join(leaked)}"


def test_the_database_holds_no_personal_data_or_message_text_in_clear(
    bot: LiveBot, workdir: Path
) -> None:
    """Runs after the whole module: read the SQLite file's bytes as someone with the disk."""
    forbidden = {
        **PERSONAL_DATA,
        "typed text": "I want to place an order",
        "the bot's replies": "Espresso Beans",
    }
    assert found_in_sqlite_files(workdir / "bot.db", forbidden) == []
    assert found_in_tables(f"sqlite:///{workdir / 'bot.db'}", forbidden) == []
