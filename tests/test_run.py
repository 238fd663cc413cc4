"""`make run`'s script: both servers come up, hold a shop conversation, and stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
RASA_URL = "http://127.0.0.1:5005"
ACTIONS_URL = "http://127.0.0.1:5055"
START_TIMEOUT = 180.0


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "run.sh exited before the servers came up"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def running_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    busy = [port for port in (5005, 5055) if port_open(port)]
    assert not busy, f"ports {busy} are in use: stop the other bot (make run) first"
    workdir = tmp_path_factory.mktemp("run")
    log = workdir / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "WHATSAPP_"))}
    env["ENV_FILE"] = os.devnull  # a developer's .env must not change what this test sees
    env["DATABASE_URL"] = f"sqlite:///{workdir / 'tracker.db'}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "scripts/run.sh", "serve"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(process, f"{ACTIONS_URL}/health")
        wait_until_up(process, f"{RASA_URL}/")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        print(log.read_text(errors="replace")[-3000:])


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
    assert "didn't get that" in texts(say(sender, "zxqv blorp"))


def test_ctrl_c_stops_both_servers(running_bot: subprocess.Popen[bytes]) -> None:
    os.killpg(running_bot.pid, signal.SIGINT)
    assert running_bot.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while (port_open(5005) or port_open(5055)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not port_open(5005) and not port_open(5055)
