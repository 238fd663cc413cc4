"""`make run`'s script: both servers come up, hold a shop conversation, and stop on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from sandbox.processes import port_open, spawn, wait_until_up

pytestmark = pytest.mark.live  # every test here talks to the running bot

ROOT = Path(__file__).resolve().parent.parent
RASA_URL = "http://127.0.0.1:5005"
ACTIONS_URL = "http://127.0.0.1:5055"


def start_run(workdir: Path, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """`make run`'s script with a clean environment plus `env_extra`; waits until both answer."""
    busy = [port for port in (5005, 5055) if port_open(port)]
    assert not busy, f"ports {busy} are in use: stop the other bot (make run) first"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "WHATSAPP_", "ACTION_SERVER_", "RASA_REST_", "RASA_API_"))
    }
    env["ENV_FILE"] = os.devnull  # a developer's .env must not change what this test sees
    env["SANDBOX"] = "off"  # the bot alone, not the sandbox that `make run` starts without settings
    env["DATABASE_URL"] = f"sqlite:///{workdir / 'tracker.db'}"
    env["RUN_DIR"] = str(workdir)  # its credentials and endpoints: other tests run bots too
    env.update(env_extra)
    process = spawn(["bash", "scripts/run.sh", "serve"], env, workdir / "run.log")
    wait_until_up(f"{ACTIONS_URL}/health", [process])
    wait_until_up(f"{RASA_URL}/", [process])
    assert {"credentials.yml", "endpoints.yml"} <= {p.name for p in workdir.iterdir()}
    return process


def stop_run(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person would; both servers must be gone."""
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while (port_open(5005) or port_open(5055)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not port_open(5005) and not port_open(5055)


@pytest.fixture(scope="module")
def default_ports() -> None:
    """Marks the tests that start `make run` on its fixed ports (Rasa 5005, actions 5055).
    Module-scoped, so that they all run on one test worker (tests/support/worker_groups.py):
    two of them at once would clash on the ports."""


@pytest.fixture(scope="module")
def running_bot(
    default_ports: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    workdir = tmp_path_factory.mktemp("run")
    process = start_run(workdir, {})
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        print((workdir / "run.log").read_text(errors="replace")[-3000:])


def say(sender: str, text: str) -> list[dict[str, Any]]:
    response = requests.post(
        f"{RASA_URL}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30
    )
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()
    return messages


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def test_servers_answer_and_the_api_is_off(running_bot: subprocess.Popen[bytes]) -> None:
    assert "Hello from Rasa" in requests.get(f"{RASA_URL}/", timeout=5).text
    assert requests.get(f"{ACTIONS_URL}/health", timeout=5).json() == {"status": "ok"}
    # --enable-api is off by default: the HTTP API's conversation routes do not exist.
    assert requests.get(f"{RASA_URL}/conversations/x/tracker", timeout=5).status_code == 404


LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as the kernel lists them) that listen on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_without_whatsapp_or_a_rest_token_both_listen_on_loopback_only(
    running_bot: subprocess.Popen[bytes],
) -> None:
    # The REST channel has no token here: the bot must not be reachable from the network.
    for port in (5005, 5055):
        addresses = listening_addresses(port)
        assert addresses and addresses <= LOOPBACK_HEX, (port, addresses)


def test_the_action_server_wants_the_token_make_run_made(
    running_bot: subprocess.Popen[bytes],
) -> None:
    # No ACTION_SERVER_TOKEN was set: run.sh made one, so a local caller without it is refused
    # (the conversation test shows Rasa itself has it).
    answer = requests.post(f"{ACTIONS_URL}/webhook", json={"next_action": "x"}, timeout=10)
    assert answer.status_code == 401


def test_a_shop_conversation_over_rest(running_bot: subprocess.Popen[bytes]) -> None:
    sender = f"run-test-{uuid.uuid4().hex[:8]}"
    greeting = say(sender, "hello")
    assert "Welcome" in texts(greeting)
    assert [b["payload"] for b in greeting[0]["buttons"]][:1] == ["/browse_catalog"]
    assert "Espresso Beans" in texts(say(sender, "what do you sell?"))
    summary = texts(say(sender, "I'd like to order espresso beans"))
    assert "1 × Espresso Beans — €12.90" in summary and "payment link?" in summary
    assert "isn't set up" in texts(say(sender, "yes"))
    assert "not confirmed yet" in texts(say(sender, "where is my order?"))
    assert "I can show you" in texts(say(sender, "what can you do"))
    assert "not sure what you mean" in texts(say(sender, "zxqv blorp"))


def test_ctrl_c_stops_both_servers(running_bot: subprocess.Popen[bytes]) -> None:
    stop_run(running_bot)


def test_with_whatsapp_settings_the_channel_answers_through_the_graph_api(
    default_ports: None, tmp_path: Path, fake_graph: GraphApiEmulator
) -> None:
    secret = secrets.token_hex(16)
    process = start_run(
        tmp_path,
        {
            "WHATSAPP_ACCESS_TOKEN": fake_graph.access_token,
            "WHATSAPP_PHONE_NUMBER_ID": fake_graph.phone_number_id,
            "WHATSAPP_APP_SECRET": secret,
            "WHATSAPP_VERIFY_TOKEN": secrets.token_hex(8),
            "WHATSAPP_API_BASE": fake_graph.base_url,
        },
    )
    try:
        customer = "15550003333"
        body, headers = meta.signed(
            meta.notification([meta.text(customer, "hello")], [meta.contact(customer)]), secret
        )
        url = f"{RASA_URL}/webhooks/whatsapp/webhook"
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 200
        deadline = time.monotonic() + 30
        while not fake_graph.messages() and time.monotonic() < deadline:
            time.sleep(0.2)
        (reply,) = fake_graph.messages()
        assert reply["to"] == customer and "Welcome" in reply["interactive"]["body"]["text"]
        assert requests.post(url, data=b"{}", timeout=10).status_code == 401
    finally:
        if process.poll() is None:
            stop_run(process)
