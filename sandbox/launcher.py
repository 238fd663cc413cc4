"""Starts and stops the bot's processes: one home for the sandbox (`python -m sandbox`), the
live tests and the benchmarks.

`start_bot` runs the action server (scripts/action_server.py, as `make run` starts it) and
one or more `rasa run` replicas with the trained model, in a working directory of their
own (endpoints.yml, credentials.yml, a SQLite database, one log per process), on free
loopback ports, and returns once every server answers its health route. The replicas are
forked from a process that has imported Rasa once (sandbox/warm_start.py), which saves
most of each start-up; `make run` and the sandbox start `rasa run` itself.

Free ports are found by binding port 0 and releasing it, so another process (a parallel
test worker, an outgoing connection) can take one before the server binds it. A server
that stops because its address is in use is retried on new ports instead of failing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from sandbox.processes import (
    HOST,
    ROOT,
    ServerProcess,
    StartError,
    free_port,
    spawn,
    stop,
    wait_until_up,
)
from sandbox.warm_start import fork_rasa, forkable

BIN = ROOT / ".venv" / "bin"
MODEL = ROOT / "models" / "shop.tar.gz"
PORT_ATTEMPTS = 3
PORT_CLASH = "address already in use"
LOG_TAIL_CHARACTERS = 4000
ENCRYPTED_TRACKER_STORE = "connectors.storage.encrypted_tracker.EncryptedTrackerStore"
# Settings of the real platforms (and the shop's real hand-over receiver and operator token)
# that a bot started here must never inherit from the shell.
PLATFORM_PREFIXES = ("STRIPE_", "WHATSAPP_", "WASENDER_", "HANDOVER_", "OPERATOR_")

T = TypeVar("T")


Starter = Callable[[Sequence[str], Mapping[str, str], Path, Path], ServerProcess]


@dataclass
class LiveBot:
    """A running action server and one or more Rasa servers (replicas).

    `processes[0]` is the action server, `processes[1:]` the replicas, in `rasa_urls` order.
    """

    rasa_urls: list[str]
    actions_url: str
    processes: list[ServerProcess]
    logs: list[Path]

    @property
    def rasa_url(self) -> str:
        return self.rasa_urls[0]

    def stop(self) -> None:
        stop(self.processes)

    def log_tail(self, characters: int = LOG_TAIL_CHARACTERS) -> str:
        return "\n".join(log.read_text(errors="replace")[-characters:] for log in self.logs)


def bot_environment(workdir: Path, env_extra: Mapping[str, str]) -> dict[str, str]:
    """Ours without the real platforms' settings, a SQLite database in `workdir`, then
    `env_extra`; an ACTION_SERVER_TOKEN made up for the run unless `env_extra` has one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_PREFIXES)}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "SANIC_ACCESS_LOG": "false",
            "DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
            **env_extra,
        }
    )
    env["ACTION_SERVER_TOKEN"] = env_extra.get("ACTION_SERVER_TOKEN") or secrets.token_hex(16)
    return env


def write_config(
    workdir: Path,
    actions_url: str,
    actions_token: str,
    channels: Mapping[str, object],
    lock_store: Mapping[str, object] | None,
    tracker_store: Mapping[str, object] | None,
) -> None:
    """endpoints.yml (the action server with its bearer token) and credentials.yml."""
    endpoints = {
        "action_endpoint": {
            "url": f"{actions_url}/webhook",
            "headers": {"Authorization": f"Bearer {actions_token}"},
        },
        "tracker_store": dict(tracker_store or {"type": ENCRYPTED_TRACKER_STORE}),
        "lock_store": dict(lock_store or {"type": "in_memory"}),
    }
    (workdir / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    (workdir / "credentials.yml").write_text(yaml.safe_dump(dict(channels)), encoding="utf-8")


def action_server_command(port: int) -> list[str]:
    return [
        str(BIN / "python"),
        "-m",
        "scripts.action_server",
        "--actions",
        "actions",
        "--port",
        str(port),
    ]


def rasa_run_command(workdir: Path, port: int) -> list[str]:
    return [
        *(str(BIN / "rasa"), "run", "--model", str(MODEL)),
        *("--endpoints", str(workdir / "endpoints.yml")),
        *("--credentials", str(workdir / "credentials.yml")),
        *("--port", str(port)),
    ]


def retrying_port_clashes(start: Callable[[], T]) -> T:
    """`start()`, called again (up to PORT_ATTEMPTS times in all) while it fails because a
    port it picked was taken before its server bound it."""
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return start()
        except StartError as error:
            if PORT_CLASH not in str(error).lower():
                raise
    return start()


def serve(
    command: Callable[[int], list[str]],
    env: Mapping[str, str],
    log: Path,
    cwd: Path,
    health_path: str,
    starter: Starter = spawn,
) -> tuple[ServerProcess, str]:
    """Starts `command(port)` with `starter` on a free port; returns (the process, its base
    URL) once `health_path` answers. StartError, with the log's tail, when it does not."""

    def once() -> tuple[ServerProcess, str]:
        port = free_port()
        process = starter(command(port), env, log, cwd)
        url = f"http://{HOST}:{port}"
        try:
            wait_until_up(url + health_path, [process])
        except BaseException as error:  # an interrupt too: no server outlives its start
            stop([process])
            if not isinstance(error, StartError):
                raise
            tail = log.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]
            raise StartError(f"{log.name}: {error}:\n{tail}") from None
        return process, url

    return retrying_port_clashes(once)


def start_bot(
    workdir: Path,
    env_extra: Mapping[str, str],
    channels: Mapping[str, object],
    replicas: int = 1,
    lock_store: Mapping[str, object] | None = None,
    tracker_store: Mapping[str, object] | None = None,
    forked: bool = True,
) -> LiveBot:
    """Starts the action server and `replicas` Rasa servers with `channels` as credentials;
    returns once all answer. Every replica shares the database and `lock_store`. The
    replicas are forked with Rasa imported (sandbox/warm_start.py) unless `forked` is False
    or the environment forbids it; then `rasa run` starts as a program of its own.
    StartError (with the logs' tails) when start-up stops."""
    env = bot_environment(workdir, env_extra)
    rasa_starter: Starter = fork_rasa if forked and forkable(env) else spawn

    def once() -> LiveBot:
        bot = _launch(workdir, env, channels, replicas, lock_store, tracker_store, rasa_starter)
        try:
            wait_until_up(f"{bot.actions_url}/health", bot.processes)
            for url in bot.rasa_urls:
                wait_until_up(f"{url}/", bot.processes)
        except BaseException as error:  # an interrupt too: no server outlives its start
            bot.stop()
            if not isinstance(error, StartError):
                raise
            raise StartError(f"bot did not start ({error}):\n{bot.log_tail()}") from None
        return bot

    return retrying_port_clashes(once)


def _launch(
    workdir: Path,
    env: dict[str, str],
    channels: Mapping[str, object],
    replicas: int,
    lock_store: Mapping[str, object] | None,
    tracker_store: Mapping[str, object] | None,
    rasa_starter: Starter,
) -> LiveBot:
    actions_port = free_port()
    rasa_ports = [free_port() for _ in range(replicas)]
    actions_url = f"http://{HOST}:{actions_port}"
    token = env["ACTION_SERVER_TOKEN"]
    write_config(workdir, actions_url, token, channels, lock_store, tracker_store)
    commands: dict[str, tuple[Starter, list[str]]] = {
        "actions": (spawn, action_server_command(actions_port))
    }
    for number, port in enumerate(rasa_ports):
        name = "rasa" if replicas == 1 else f"rasa{number + 1}"
        commands[name] = (rasa_starter, rasa_run_command(workdir, port))
    processes: list[ServerProcess] = []
    logs = []
    for name, (starter, command) in commands.items():
        log = workdir / f"{name}.log"
        processes.append(starter(command, env, log, workdir))
        logs.append(log)
    return LiveBot([f"http://{HOST}:{port}" for port in rasa_ports], actions_url, processes, logs)
