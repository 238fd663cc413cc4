"""`make run` without WhatsApp and Stripe settings: the sandbox starts, says so loudly, the
page's customer gets the bot's greeting, and Ctrl-C stops every process and port."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from sandbox.__main__ import main as sandbox_main
from sandbox.processes import free_port, port_open, spawn, stop
from tests.support.sandbox_client import Customer, kind

START_SECONDS = 240.0


@pytest.mark.live
def test_make_run_without_settings_starts_the_sandbox_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    ports = {
        name: free_port()
        for name in (
            "SANDBOX_PAGE_PORT",
            "SANDBOX_GRAPH_PORT",
            "SANDBOX_STRIPE_PORT",
            "RASA_PORT",
            "ACTION_SERVER_PORT",
        )
    }
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "WHATSAPP_", "SANDBOX"))
    }
    env.update({name: str(port) for name, port in ports.items()})
    env["ENV_FILE"] = os.devnull
    env["SANDBOX_DATABASE_URL"] = f"sqlite:///{tmp_path / 'sandbox.db'}"
    env["RUN_DIR"] = str(tmp_path)  # not var/, which another test's bot may be writing
    log = tmp_path / "run.log"
    process = spawn(["bash", "scripts/run.sh", "serve"], env, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while "Open the chat simulator" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        text = log.read_text()
        assert "starting the SANDBOX" in text and "SANDBOX — no real messages or payments" in text
        assert "settings point at the emulators" in text and "are missing" not in text
        page = f"http://localhost:{ports['SANDBOX_PAGE_PORT']}"
        assert page + "/" in text
        assert "SANDBOX" in requests.get(page, timeout=5).text
        customer = Customer.add(page, "Launcher")
        customer.say("hello")
        assert kind(customer.next(0)) == "interactive:button", customer.bot_messages()
        customer.say("I want to place an order")  # a custom action, on ACTION_SERVER_PORT
        assert kind(customer.next(1)) == "interactive:flow", customer.bot_messages()
        webhook = f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/whatsapp/webhook"
        assert requests.post(webhook, data=b"{}", timeout=10).status_code == 401  # unsigned
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while any(port_open(p) for p in ports.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [name for name, port in ports.items() if port_open(port)]
    finally:  # SIGTERM first: the sandbox then stops the bot it started in a session of its own
        stop([process])
    logs = log.read_text()
    assert "sk_test_" not in logs and "whsec_" not in logs and "BEGIN PRIVATE KEY" not in logs


def test_a_busy_bot_port_is_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("RASA_PORT", str(port))
        monkeypatch.setenv("ACTION_SERVER_PORT", str(free_port()))
        assert sandbox_main() == 1
    printed = capsys.readouterr()
    assert f"port {port} (RASA_PORT) is in use" in printed.err
    assert "starting the WhatsApp and Stripe emulators" not in printed.out
