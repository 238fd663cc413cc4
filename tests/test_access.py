"""Who may reach the bot, through the real servers: the REST channel next to WhatsApp, Rasa's
HTTP API, the action server, body limits, signature headers and the health alias."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
import yaml
from rasa.core.channels.rest import RestInput
from sanic import Sanic
from sanic.request import Request

from actions.settings import ActionServerSettings
from connectors.edge.limits import api_is_open, cap_request_size
from connectors.rest_channel import TokenRestInput, refuse_open_rest_channels
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import BIN, MODEL, LiveBot, start_bot
from sandbox.processes import ROOT, ServerProcess, free_port, spawn
from sandbox.stripe_api import StripeEmulator
from sandbox.warm_start import fork_rasa
from scripts.settings_report import SETTINGS, channels_for, endpoints_for
from shop_contract.env_settings import ConfigError
from tests.support.chat import Chat, text_of
from tests.test_purchase import order_and_get_link

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
REST_TOKEN = secrets.token_urlsafe(24)
ACTIONS_TOKEN = secrets.token_urlsafe(24)
WHATSAPP = "connectors.whatsapp.channel.WhatsAppInput"
GUARDED_REST = "connectors.rest_channel.TokenRestInput"
ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the action server must refuse without a token
_customers = iter(range(15550400000, 15550499999))


def whatsapp_env(graph: GraphApiEmulator, stripe: StripeEmulator) -> dict[str, str]:
    return {
        "WHATSAPP_ACCESS_TOKEN": graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph.base_url,
        "STRIPE_SECRET_KEY": stripe.api_key,
        "STRIPE_API_BASE": stripe.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator,
    stripe_api: StripeEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveBot]:
    """WhatsApp with the REST channel behind RASA_REST_TOKEN and a token-checking action
    server, as a shop that needs REST next to WhatsApp would run it."""
    env = {
        **whatsapp_env(graph_api, stripe_api),
        "RASA_REST_TOKEN": REST_TOKEN,
        "ACTION_SERVER_TOKEN": ACTIONS_TOKEN,
    }
    live = start_bot(tmp_path_factory.mktemp("access"), env, {GUARDED_REST: {}, WHATSAPP: {}})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    return Chat(bot, graph_api, APP_SECRET)


def rest(bot: LiveBot, body: dict[str, Any], token: str | None = REST_TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(
        f"{bot.rasa_url}/webhooks/rest/webhook", json=body, headers=headers, timeout=30
    )


# --- the REST channel next to WhatsApp (issue 12, finding 1) -----------------------------


def refused_start(workdir: Path, env: dict[str, str], channels: dict[str, object]) -> str:
    """Starts the bot expecting start-up to stop; returns the logs."""
    with pytest.raises(RuntimeError, match="bot did not start") as refused:
        start_bot(workdir, env, channels).stop()
    return str(refused.value)


@pytest.mark.live
def test_a_rest_channel_without_token_next_to_whatsapp_stops_start_up(
    graph_api: GraphApiEmulator, stripe_api: StripeEmulator, tmp_path: Path
) -> None:
    """Before: the server started, and a POST with a customer's number as sender and
    /EXTERNAL_payment_succeeded as text confirmed that customer's order."""
    env = {**whatsapp_env(graph_api, stripe_api), "RASA_REST_TOKEN": ""}
    logs = refused_start(tmp_path, env, {"rest": None, WHATSAPP: {}})
    assert "REST channel 'rest' next to WhatsApp: anyone could post as a customer" in logs


@pytest.mark.parametrize("channel", ["rest", "guarded rest without its token"])
def test_the_start_up_check_refuses_either_rest_channel_without_token(
    channel: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check the WhatsApp channel runs at start-up (the live test above sees it stop the
    real server), on Rasa's REST channel and on ours without RASA_REST_TOKEN."""
    monkeypatch.setenv("RASA_REST_TOKEN", "")
    rest = RestInput() if channel == "rest" else TokenRestInput.from_credentials(None)
    with pytest.raises(SystemExit):
        refuse_open_rest_channels([rest])
    assert f"REST channel '{rest.name()}' next to WhatsApp" in capsys.readouterr().out
    refuse_open_rest_channels([TokenRestInput(REST_TOKEN)])  # with its token: fine


@pytest.mark.live
def test_the_rest_channel_needs_its_bearer_token(bot: LiveBot) -> None:
    body = {"sender": "tool-1", "message": "hello"}
    assert rest(bot, body, token=None).status_code == 401
    assert rest(bot, body, token="wrong").status_code == 403
    answer = rest(bot, body)
    assert answer.status_code == 200 and "Welcome" in answer.text


@pytest.mark.live
def test_rest_cannot_forge_a_payment_for_a_whatsapp_customer(
    bot: LiveBot, chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    order_and_get_link(chat, stripe_api, customer, "espresso beans")
    for text in ("/EXTERNAL_payment_succeeded", '/EXTERNAL_payment_succeeded{"order_id":"x"}'):
        for channel in ({}, {"input_channel": "whatsapp"}):
            answer = rest(bot, {"sender": customer, "message": text, **channel})
            assert answer.status_code == 200
            assert "Payment received" not in answer.text and "is confirmed" not in answer.text
    chat.idle()
    assert not [m for m in chat.messages(customer) if "is confirmed" in text_of(m)]
    assert len(chat.messages(customer)) == 2  # the summary and the link, nothing since


@pytest.mark.live
@pytest.mark.parametrize("text", ["/restart", "/session_start", "/flow_completed", "/back"])
def test_rest_text_never_reaches_a_reserved_or_default_intent(bot: LiveBot, text: str) -> None:
    """Through Rasa's plain `rest` channel, `/restart` or `/back` forgot the order: 'You
    don't have any orders with us yet'."""
    sender = f"tool-{secrets.token_hex(4)}"
    summary = rest(bot, {"sender": sender, "message": "I'd like to order espresso beans"})
    order_id = re.search(r"ORD-[A-Z0-9]+", summary.text)
    assert order_id is not None, summary.text
    assert rest(bot, {"sender": sender, "message": text}).status_code == 200
    status = rest(bot, {"sender": sender, "message": "where is my order?"})
    assert f"Order {order_id.group()}: not confirmed yet" in status.text, status.text


# --- body limits, signature headers, health alias ---------------------------------------


def declared_length_answer(url: str, length: int) -> tuple[bytes, float]:
    """Sends only the headers of a POST declaring `length` bytes; returns the status line
    and how long the server took to answer."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        try:
            status_line = sock.recv(200).split(b"\r\n", 1)[0]
        except TimeoutError:
            status_line = b"(no answer)"
    return status_line, time.monotonic() - started


@pytest.mark.live
@pytest.mark.parametrize(
    "path", ["whatsapp/webhook", "whatsapp/flow", "whatsapp/stripe", "rest/webhook"]
)
def test_an_oversized_body_is_refused_before_it_is_read(bot: LiveBot, path: str) -> None:
    """Before: Sanic waited for (and would read) up to 100 MB before our 413."""
    status_line, seconds = declared_length_answer(
        f"{bot.rasa_url}/webhooks/{path}", 50 * 1024 * 1024
    )
    assert b" 413 " in status_line, status_line
    assert seconds < 3


@pytest.mark.live
def test_a_normal_body_still_goes_through(chat: Chat) -> None:
    customer = str(next(_customers))
    chat.say(customer, "hello")
    assert "Welcome" in text_of(chat.wait(customer, 1)[0])


@pytest.mark.live
@pytest.mark.parametrize(
    "header", ["t=\u00b2,v1=00", "t=,v1=", "t=1e3,v1=00", "t=\u00ff\u00fe,v1=\u00e9"]
)
def test_a_malformed_stripe_signature_is_a_400(bot: LiveBot, header: str) -> None:
    body, _ = se.signed(se.event("checkout.session.completed", {}), WEBHOOK_SECRET)
    answer = requests.post(
        f"{bot.rasa_url}/webhooks/whatsapp/stripe",
        data=body,
        headers={"Stripe-Signature": header.encode("latin-1")},
        timeout=10,
    )
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid signature"})


@pytest.mark.live
def test_health_answers_on_its_alias_too(bot: LiveBot) -> None:
    base = requests.get(f"{bot.rasa_url}/webhooks/whatsapp/", timeout=5)
    alias = requests.get(f"{bot.rasa_url}/webhooks/whatsapp/health", timeout=5)
    assert alias.status_code == base.status_code == 200
    assert alias.json()["status"] == "ok" and set(alias.json()) == set(base.json())


@pytest.mark.live
@pytest.mark.parametrize(
    "method_path", ["GET ", "POST /H-2345ABCD/reply", "POST /H-2345ABCD/resume"]
)
def test_the_operator_api_is_off_without_its_token(bot: LiveBot, method_path: str) -> None:
    method, path = method_path.split(" ")
    answer = requests.request(
        method,
        f"{bot.rasa_url}/webhooks/whatsapp/operator/handovers{path}",
        json={"text": "hello"},
        headers={"Authorization": f"Bearer {REST_TOKEN}"},  # no token is right: it is off
        timeout=10,
    )
    assert answer.status_code == 404


@pytest.mark.live
def test_with_nobody_to_tell_asking_for_a_person_says_how_to_reach_the_shop(chat: Chat) -> None:
    """No HANDOVER_WEBHOOK_URL: no hand-over, the bot keeps going."""
    customer = str(next(_customers))
    chat.say(customer, "can I talk to a real person?")
    assert "To talk to a person, please contact" in text_of(chat.wait(customer, 1)[0])
    chat.say(customer, "what are your opening hours?")
    assert "Monday–Friday" in text_of(chat.wait(customer, 2)[1])


# --- the action server ---------------------------------------------------------------------


@pytest.mark.live
def test_the_action_server_checks_its_token(bot: LiveBot) -> None:
    call = {"next_action": "action_show_catalog", "sender_id": "x", "tracker": {}}
    url = f"{bot.actions_url}/webhook"
    assert requests.post(url, json=call, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert requests.post(url, json=call, headers=wrong, timeout=10).status_code == 403
    assert requests.get(f"{bot.actions_url}/actions", timeout=10).status_code == 401
    right = {"Authorization": f"Bearer {ACTIONS_TOKEN}"}
    actions = requests.get(f"{bot.actions_url}/actions", headers=right, timeout=10)
    assert actions.status_code == 200 and {"name": "action_show_catalog"} in actions.json()
    assert requests.get(f"{bot.actions_url}/health", timeout=5).status_code == 200


def action_server(env_extra: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    for name in ("ACTION_SERVER_HOST", "SANIC_HOST", "ACTION_SERVER_TOKEN"):
        if name not in env_extra:
            env.pop(name, None)
    command = [str(BIN / "python"), "-m", "scripts.action_server", "--port", str(free_port())]
    return spawn(command, env, log)


@pytest.mark.live
def test_the_action_server_will_not_listen_wider_without_a_token(tmp_path: Path) -> None:
    """Before: `rasa run actions` listened on 0.0.0.0 and ran any action for anyone."""
    log = tmp_path / "actions.log"
    process = action_server({"ACTION_SERVER_HOST": ANY_INTERFACE}, log)
    assert process.wait(timeout=60) == 2
    assert log.read_text().strip().splitlines()[-1] == (
        "action server: ACTION_SERVER_TOKEN: not set — listening on 0.0.0.0 needs it (anyone "
        "reaching the port could run the shop's actions); set it, or listen on 127.0.0.1"
    )


@pytest.mark.live
def test_the_action_server_listens_on_loopback_by_default(tmp_path: Path) -> None:
    log = tmp_path / "actions.log"
    process = action_server({}, log)
    try:
        deadline = time.monotonic() + 60
        while "action server on" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.3)
        assert "action server on http://127.0.0.1:" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)


# --- Rasa's HTTP API ---------------------------------------------------------------------


def rasa_run(workdir: Path, env_extra: dict[str, str], *args: str) -> ServerProcess:
    """`rasa run` with the WhatsApp channel and `args`, on a free port (forked with Rasa
    imported: sandbox/warm_start.py)."""
    (workdir / "credentials.yml").write_text(f"{WHATSAPP}: {{}}\n", encoding="utf-8")
    (workdir / "endpoints.yml").write_text(
        "tracker_store:\n  type: connectors.storage.encrypted_tracker.EncryptedTrackerStore\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        "DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
        **env_extra,
    }
    command = [str(BIN / "rasa"), "run", "--model", str(MODEL), "--port", str(free_port())]
    command += ["--credentials", "credentials.yml", "--endpoints", "endpoints.yml", *args]
    return fork_rasa(command, env, workdir / "rasa.log", cwd=workdir)


@pytest.mark.live
def test_rasa_run_with_the_api_and_no_token_stops(
    tmp_path: Path, graph_api: GraphApiEmulator, stripe_api: StripeEmulator
) -> None:
    """Before: `--enable-api` without `--auth-token` served every conversation to anyone."""
    process = rasa_run(tmp_path, whatsapp_env(graph_api, stripe_api), "--enable-api")
    try:
        assert process.wait(timeout=180) != 0
    finally:
        if process.poll() is None:  # before the fix it served the open API
            os.killpg(process.pid, signal.SIGKILL)
    assert (
        "HTTP API is on (--enable-api) without --auth-token" in (tmp_path / "rasa.log").read_text()
    )


@pytest.mark.live
def test_make_run_refuses_the_api_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "WHATSAPP_"))}
    env.update(
        {
            "ENV_FILE": os.devnull,
            "SANDBOX": "off",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'tracker.db'}",
            "RUN_DIR": str(tmp_path),
            "RASA_ENABLE_API": "true",
            "RASA_API_TOKEN": "",
        }
    )
    log = tmp_path / "run.log"
    process = spawn(["bash", "scripts/run.sh", "serve"], env, log)
    try:
        assert process.wait(timeout=60) == 1
    finally:  # before the fix it started both servers: stop them all
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert log.read_text().strip() == (
        "RASA_ENABLE_API=true needs RASA_API_TOKEN (anyone could read and change "
        "conversations): set it, or set RASA_ENABLE_API=false."
    )


# --- the pieces, without servers -----------------------------------------------------------


def test_credentials_never_list_an_open_rest_channel_next_to_whatsapp() -> None:
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
    assert WHATSAPP in credentials and "rest" not in credentials
    ready = {s.name: "set" for s in SETTINGS if s.feature == "WhatsApp"}
    assert channels_for(ready, credentials) == {WHATSAPP: {}}
    with_token = channels_for({**ready, "RASA_REST_TOKEN": "t"}, {**credentials, "rest": None})
    assert with_token == {GUARDED_REST: {}, WHATSAPP: {}}
    assert channels_for({}, credentials) == {GUARDED_REST: {}}  # no WhatsApp: local REST


def test_endpoints_send_the_action_server_token_as_a_bearer_header() -> None:
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    plain = endpoints_for({}, endpoints, 5056)
    assert plain["action_endpoint"] == {"url": "http://localhost:5056/webhook"}
    assert plain["tracker_store"] == endpoints["tracker_store"]
    sent = endpoints_for({"ACTION_SERVER_TOKEN": "s3cret"}, endpoints, 5055)["action_endpoint"]
    assert sent["headers"] == {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    ("environ", "host"),
    [
        ({}, "127.0.0.1"),
        ({"SANIC_HOST": "::1"}, "::1"),
        ({"ACTION_SERVER_HOST": ANY_INTERFACE, "ACTION_SERVER_TOKEN": "t"}, ANY_INTERFACE),
        ({"ACTION_SERVER_HOST": "localhost"}, "localhost"),
    ],
)
def test_action_server_host_and_token(environ: dict[str, str], host: str) -> None:
    settings = ActionServerSettings.from_env(environ)
    assert (settings.listen_host, settings.token) == (host, environ.get("ACTION_SERVER_TOKEN"))


@pytest.mark.parametrize("host", [ANY_INTERFACE, "::", "10.0.0.5", "actions.internal"])
def test_action_server_wider_than_loopback_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match=f"^ACTION_SERVER_TOKEN: not set — listening on {host}"):
        ActionServerSettings.from_env({"ACTION_SERVER_HOST": host, "ACTION_SERVER_TOKEN": " "})


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("/EXTERNAL_payment_succeeded", "EXTERNAL_payment_succeeded"),
        ("/restart", "restart"),
        ('/session_start{"a": 1}', 'session_start{"a": 1}'),
        ("/affirm", "/affirm"),
        ("hello", "hello"),
    ],
)
def test_rest_text_is_filtered_like_a_tapped_button(message: str, text: str) -> None:
    channel = TokenRestInput("t")
    request = cast(Request, SimpleNamespace(json={"message": message, "input_channel": "whatsapp"}))
    assert channel._extract_message(request) == text
    assert channel._extract_input_channel(request) == "rest"


@pytest.mark.rasa_core  # imports Rasa's core: TensorFlow
@pytest.mark.parametrize(("auth_token", "open_api"), [(None, True), ("t", False)])
def test_the_body_limit_stays_rasas_while_its_api_is_on(
    auth_token: str | None, open_api: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa's API takes models and training data: the server-wide limit stays Sanic's."""
    from rasa.server import create_app  # TensorFlow: only on the worker of the RASA_CORE group

    monkeypatch.setattr(Sanic, "test_mode", True)
    app = create_app(auth_token=auth_token)
    assert api_is_open(app) is open_api
    default = app.config.REQUEST_MAX_SIZE
    cap_request_size(app, 1024)
    assert default == app.config.REQUEST_MAX_SIZE
    without_api = Sanic(f"no_api_{secrets.token_hex(4)}")
    assert not api_is_open(without_api)
    cap_request_size(without_api, 1024)
    assert without_api.config.REQUEST_MAX_SIZE == 1024
