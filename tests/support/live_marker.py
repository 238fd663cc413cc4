"""Keeps the `live` marker honest: a test that starts the bot's servers, or that uses a
fixture that started them, must be marked `live`, or it fails.

`make test-fast` runs `pytest -m "not live"`: the in-process tests only, in under a minute.
A server start-up costs 10–30 s; one that slips into the fast run unmarked would make it
slow without anyone noticing, so the guard watches every process the tests start (through
Python's audit hooks for `subprocess.Popen` and for the Rasa commands sandbox/warm_start.py
forks) and names the test and the command.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Generator, Sequence
from pathlib import PurePath
from typing import Any

import pytest

from sandbox.warm_start import AUDIT_EVENT
from tests.support.phase_guard import PhaseGuard

MARKER = "live"
# `python -m MODULE` entry points that serve HTTP (the action server, the sandbox).
SERVER_MODULES = {"scripts.action_server", "sandbox"}
# Subcommands of the `rasa` command line that start a server, and the module that runs that
# command line with skops imported first.
RASA_SERVERS = {"run", "shell"}
RASA_CLI_MODULE = "scripts.rasa_cli"
SERVER_SCRIPTS = {"run.sh"}


def starts_server(argv: Sequence[str]) -> bool:
    """True for the commands that start the bot's servers: `rasa run`/`shell` (also through
    scripts/rasa_cli.py), the action server, `python -m sandbox`, scripts/run.sh."""
    names = [PurePath(arg).name for arg in argv]
    if "rasa" in names[:1] and len(argv) > 1 and argv[1] in RASA_SERVERS:
        return True
    modules = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"}
    if RASA_CLI_MODULE in modules:
        after = argv.index(RASA_CLI_MODULE) + 1
        return after < len(argv) and argv[after] in RASA_SERVERS
    return bool(modules & SERVER_MODULES) or bool(set(names) & SERVER_SCRIPTS)


class LiveGuard(PhaseGuard):
    """Records the server commands started while a test (or a fixture) is set up or runs."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.live_fixtures: set[str] = set()

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "subprocess.Popen":
            argv = args[1]
        elif event == AUDIT_EVENT:
            argv = args[0]
        else:
            return
        if isinstance(argv, (str, bytes)):
            argv = [argv]
        argv = [str(arg) for arg in argv or ()]
        if starts_server(argv):
            self.started.append(" ".join([PurePath(argv[0]).name, *argv[1:3]]))

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        before = len(self.started)
        try:
            return (yield)
        finally:
            if len(self.started) > before:
                self.live_fixtures.add(fixturedef.argname)

    def watch(self, item: pytest.Item, phase: str) -> Generator[None, None, None]:
        before = len(self.started)
        yield
        if item.get_closest_marker(MARKER) is not None:
            return
        commands = self.started[before:]
        fixtures = sorted(self.live_fixtures & set(getattr(item, "fixturenames", ())))
        if commands or fixtures:
            why = f"started {commands}" if commands else f"uses fixtures {fixtures} that did"
            pytest.fail(
                f"{item.nodeid} {phase} and {why}: mark it @pytest.mark.{MARKER} (or set "
                f"pytestmark = pytest.mark.{MARKER} in its module) so that `make test-fast`, "
                f"which runs without servers, leaves it out",
                pytrace=False,
            )


_active: list[LiveGuard] = []  # the guard of the pytest session running in this process


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    if _active:
        _active[-1].audit(event, args)


@functools.cache
def _add_audit_hook() -> None:
    sys.addaudithook(_dispatch)  # audit hooks cannot be removed: one for the process


def install(config: pytest.Config) -> None:
    """Registers a guard for this pytest session (called by conftest's pytest_configure)."""
    _add_audit_hook()
    guard = LiveGuard()
    _active.append(guard)
    config.pluginmanager.register(guard, "live-guard")
    config.add_cleanup(lambda: _active.remove(guard))
