"""Starts the real bot for integration tests: the action server and `rasa run`.

Both on free loopback ports, with the trained model, a temporary SQLite database and the
environment the test gives (e.g. WhatsApp settings pointing at the fake Graph API). The
action server is started as `make run` starts it (scripts/action_server.py), with a shared
token Rasa sends it (ACTION_SERVER_TOKEN from the test, else one made up for the run).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "shop.tar.gz"
BIN = ROOT / ".venv" / "bin"
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveBot:
    """A running action server and one or more Rasa servers (replicas).

    `processes[0]` is the action server, `processes[1:]` the replicas, in `rasa_urls` order.
    """

    rasa_urls: list[str]
    actions_url: str
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    @property
    def rasa_url(self) -> str:
        return self.rasa_urls[0]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, characters: int = 4000) -> str:
        return "\n".join(log.read_text(errors="replace")[-characters:] for log in self.logs)


def wait_for(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a server exited during start-up")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT:.0f} s")


def start_bot(
    workdir: Path,
    env_extra: dict[str, str],
    channels: dict[str, object],
    replicas: int = 1,
    lock_store: dict[str, object] | None = None,
    tracker_store: dict[str, object] | None = None,
) -> LiveBot:
    """Starts the action server and `replicas` Rasa servers with `channels` as credentials;
    returns once all answer. Every replica shares the database and `lock_store`."""
    actions_port = free_port()
    rasa_ports = [free_port() for _ in range(replicas)]
    actions_token = env_extra.get("ACTION_SERVER_TOKEN") or secrets.token_hex(16)
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(
        yaml.safe_dump(
            {
                "action_endpoint": {
                    "url": f"http://127.0.0.1:{actions_port}/webhook",
                    "headers": {"Authorization": f"Bearer {actions_token}"},
                },
                "tracker_store": tracker_store
                or {"type": "connectors.storage.encrypted_tracker.EncryptedTrackerStore"},
                "lock_store": lock_store or {"type": "in_memory"},
            }
        ),
        encoding="utf-8",
    )
    credentials = workdir / "credentials.yml"
    credentials.write_text(yaml.safe_dump(channels), encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "WHATSAPP_", "WASENDER_"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "SANIC_ACCESS_LOG": "false",
            "DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
            **env_extra,
            "ACTION_SERVER_TOKEN": actions_token,
        }
    )
    rasa = str(BIN / "rasa")
    python = str(BIN / "python")
    commands = {
        "actions": [
            *(python, "-m", "scripts.action_server", "--actions", "actions"),
            *("--port", str(actions_port)),
        ]
    }
    for number, port in enumerate(rasa_ports):
        name = "rasa" if replicas == 1 else f"rasa{number + 1}"
        commands[name] = [
            rasa,
            "run",
            "--model",
            str(MODEL),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(credentials),
            "--port",
            str(port),
        ]
    processes, logs = [], []
    for name, command in commands.items():
        log = workdir / f"{name}.log"
        processes.append(spawn_logged(command, env, log, cwd=workdir))
        logs.append(log)
    bot = LiveBot(
        [f"http://127.0.0.1:{port}" for port in rasa_ports],
        f"http://127.0.0.1:{actions_port}",
        processes,
        logs,
    )
    try:
        wait_for(f"{bot.actions_url}/health", processes)
        for url in bot.rasa_urls:
            wait_for(f"{url}/", processes)
    except RuntimeError:
        bot.stop()
        raise RuntimeError(f"bot did not start:\n{bot.log_tail()}") from None
    return bot


def port_open(port: int) -> bool:
    """True while something listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn_logged(
    command: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Starts `command` in its own session (so its whole group can be signalled), with
    stdout and stderr going to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
