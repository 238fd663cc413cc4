"""Server processes for the sandbox, the live tests and the benchmarks: free loopback ports,
starting a command in its own session (so a stop reaches its children), waiting for its
health route, and stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.2


class ServerProcess(Protocol):
    """What the launcher needs of a started server: a `subprocess.Popen`, or a Rasa command
    forked by sandbox/warm_start.py."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class StartError(RuntimeError):
    """A server exited, or did not answer in time, during start-up; the message has the
    tail of its log."""


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    """True while something listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def spawn(
    command: Sequence[str], env: Mapping[str, str], log: Path | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Starts `command` in its own session, so that `stop` reaches its whole process group;
    its output goes to `log` (or to ours without one)."""
    if log is None:
        return subprocess.Popen(list(command), cwd=cwd, env=dict(env), start_new_session=True)
    with log.open("wb") as output:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(processes: Sequence[ServerProcess], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to each process group, then SIGKILL to those still running after `timeout`."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended a moment ago
                os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(
    url: str,
    processes: Sequence[ServerProcess],
    timeout: float = START_TIMEOUT_SECONDS,
) -> None:
    """Polls `url` until it answers 200; StartError when a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise StartError("a server exited during start-up")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or too busy starting to answer
            pass
        time.sleep(POLL_SECONDS)
    raise StartError(f"{url} did not answer within {timeout:.0f} s")
