"""The WhatsApp channel in a bot that is not this shop (issue 13).

A minimal Rasa 3.6 project of its own — three intents, no custom actions, no slots, no
action server, no Flow or Stripe settings — is written into a temporary directory, trained
there, and served by `rasa run` from there with only `connectors.whatsapp.channel.WhatsAppInput` in
its credentials. It reads its settings from its own `.env` and keeps its database in its own
directory. Customers talk to it through signed webhooks; its replies reach the Graph API
emulator as text, interactive button and image messages.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import BIN, LOG_TAIL_CHARACTERS, LiveBot, serve
from sandbox.processes import ROOT, StartError, stop
from sandbox.warm_start import fork_rasa
from tests.support.chat import Chat

pytestmark = pytest.mark.live  # every test here talks to the running bot

APP_SECRET = secrets.token_hex(16)
VERIFY_TOKEN = secrets.token_urlsafe(12)
PICTURE = "https://example.com/cat.jpg"
TRAIN_TIMEOUT = 240.0

CONFIG = {
    "recipe": "default.v1",
    "language": "en",
    "assistant_id": "standalone_whatsapp_test",
    "pipeline": [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4},
        {"name": "LogisticRegressionClassifier"},
    ],
    "policies": [{"name": "RulePolicy"}],
}
DOMAIN = {
    "version": "3.1",
    "intents": ["greet", "menu", "show_picture"],
    "responses": {
        "utter_greet": [{"text": "Hello from the tiny bot!"}],
        "utter_menu": [
            {
                "text": "What would you like?",
                "buttons": [
                    {"title": "Say hello", "payload": "/greet"},
                    {"title": "A picture", "payload": "/show_picture"},
                ],
            }
        ],
        "utter_picture": [{"text": "Here it is.", "image": PICTURE}],
    },
}
NLU = {
    "version": "3.1",
    "nlu": [
        {"intent": "greet", "examples": "- hello\n- hi\n- hey there\n- good morning\n- hallo\n"},
        {
            "intent": "menu",
            "examples": "- menu\n- show me the menu\n- what can you do\n- options\n- help\n",
        },
        {
            "intent": "show_picture",
            "examples": "- picture\n- show me a picture\n- send a photo\n- image please\n"
            "- a cat picture\n",
        },
    ],
}
RULES = {
    "version": "3.1",
    "rules": [
        {"rule": f"answer {intent}", "steps": [{"intent": intent}, {"action": action}]}
        for intent, action in (
            ("greet", "utter_greet"),
            ("menu", "utter_menu"),
            ("show_picture", "utter_picture"),
        )
    ],
}


def write_yaml(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def write_project(project: Path) -> None:
    (project / "data").mkdir()
    write_yaml(project / "config.yml", CONFIG)
    write_yaml(project / "domain.yml", DOMAIN)
    write_yaml(project / "data" / "nlu.yml", NLU)
    write_yaml(project / "data" / "rules.yml", RULES)


def project_env() -> dict[str, str]:
    """The environment with none of this shop's settings: no WhatsApp, Stripe, database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "WHATSAPP_", "WASENDER_", "DATABASE_URL", "ACTION_"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "SANIC_ACCESS_LOG": "false",
        }
    )
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The minimal project, trained into its own `models/`."""
    project = tmp_path_factory.mktemp("standalone")
    write_project(project)
    started = time.monotonic()
    log = project / "train.log"
    training = fork_rasa(
        [str(BIN / "rasa"), "train", "--fixed-model-name", "tiny", "--out", "models"],
        project_env(),
        log,
        project,
    )
    try:
        code = training.wait(timeout=TRAIN_TIMEOUT)
    finally:
        stop([training])  # a training that overran its time is not left running
    assert code == 0, log.read_text()[-LOG_TAIL_CHARACTERS:]
    print(f"trained the minimal bot in {time.monotonic() - started:.1f} s")
    return project


@pytest.fixture(scope="module")
def bot(project: Path, graph_api: GraphApiEmulator) -> Iterator[LiveBot]:
    """`rasa run` in the project's directory: WhatsApp only, no action endpoint, settings
    from the project's own `.env`, DATABASE_URL unset."""
    (project / ".env").write_text(
        "\n".join(
            [
                f"WHATSAPP_ACCESS_TOKEN={graph_api.access_token}",
                f"WHATSAPP_PHONE_NUMBER_ID={graph_api.phone_number_id}",
                f"WHATSAPP_APP_SECRET={APP_SECRET}",
                f"WHATSAPP_VERIFY_TOKEN={VERIFY_TOKEN}",
                f"WHATSAPP_API_BASE={graph_api.base_url}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    write_yaml(project / "credentials.yml", {"connectors.whatsapp.channel.WhatsAppInput": {}})
    write_yaml(
        project / "endpoints.yml",
        {"tracker_store": {"type": "connectors.storage.encrypted_tracker.EncryptedTrackerStore"}},
    )
    log = project / "rasa.log"
    try:
        process, url = serve(
            lambda port: [str(BIN / "rasa"), "run", "--port", str(port)],
            project_env(),
            log,
            project,
            "/webhooks/whatsapp/health",
            fork_rasa,
        )
    except StartError as error:
        raise StartError(f"the minimal bot did not start: {error}") from None
    live = LiveBot([url], "", [process], [log])
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    return Chat(bot, graph_api, APP_SECRET)


_customers = iter(range(15550300000, 15550399999))


def new_customer() -> str:
    return str(next(_customers))


def test_the_bot_reads_its_own_env_and_keeps_its_database_in_its_own_directory(
    chat: Chat, project: Path
) -> None:
    handshake = requests.get(
        chat.webhook,
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
        timeout=5,
    )
    assert (handshake.status_code, handshake.text) == (200, "42")
    assert (project / "var" / "tracker.db").is_file()


def test_text_in_text_out(chat: Chat) -> None:
    customer = new_customer()
    chat.say(customer, "hello")
    reply = chat.next_reply(customer, 0)
    assert (reply["type"], reply["text"]["body"]) == ("text", "Hello from the tiny bot!")


def test_buttons_go_out_as_an_interactive_message_and_a_tap_is_understood(chat: Chat) -> None:
    customer = new_customer()
    chat.say(customer, "show me the menu")
    menu = chat.next_reply(customer, 0)
    assert menu["type"] == "interactive"
    assert menu["interactive"]["type"] == "button"
    assert menu["interactive"]["body"]["text"] == "What would you like?"
    buttons = menu["interactive"]["action"]["buttons"]
    assert [(b["reply"]["id"], b["reply"]["title"]) for b in buttons] == [
        ("/greet", "Say hello"),
        ("/show_picture", "A picture"),
    ]
    chat.tap(customer, "/greet", "Say hello")
    assert chat.next_reply(customer, 1)["text"]["body"] == "Hello from the tiny bot!"


def test_an_image_goes_out_as_an_image_message(chat: Chat) -> None:
    customer = new_customer()
    chat.say(customer, "show me a picture")
    sent = chat.wait(customer, 2)
    assert [m["type"] for m in sent] == ["text", "image"]
    assert sent[0]["text"]["body"] == "Here it is."
    assert sent[1]["image"]["link"] == PICTURE


def test_a_redelivered_message_is_answered_once(chat: Chat) -> None:
    customer = new_customer()
    document = meta.notification([meta.text(customer, "hi")], [meta.contact(customer)])
    assert chat.post(document).status_code == 200
    chat.wait(customer, 1)
    assert chat.post(document).status_code == 200  # Meta re-delivers the same message id
    chat.idle()
    assert len(chat.messages(customer)) == 1


def test_unsigned_and_wrongly_signed_posts_are_refused(chat: Chat) -> None:
    customer = new_customer()
    document = meta.notification([meta.text(customer, "hello")], [meta.contact(customer)])
    unsigned = requests.post(
        chat.webhook,
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert unsigned.status_code == 401
    assert replace(chat, app_secret="not-the-secret").post(document).status_code == 403
    chat.idle()
    assert chat.messages(customer) == []


def test_a_message_it_cannot_read_gets_no_guessed_answer(chat: Chat) -> None:
    """The bot has no intent for stickers and the like: no reply is made up for one (its
    NLU would otherwise classify the connector's placeholder text as one of its intents)."""
    customer = new_customer()
    sticker = meta.message(customer, "sticker", {"id": "4321", "mime_type": "image/webp"})
    assert chat.post(meta.notification([sticker], [meta.contact(customer)])).status_code == 200
    chat.say(customer, "hello")
    sent = chat.wait(customer, 1, settle=True)
    assert [m["text"]["body"] for m in sent] == ["Hello from the tiny bot!"]
