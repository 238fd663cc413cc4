"""Rasa commands forked from a process that has already imported Rasa.

Of the ~14 CPU-seconds a `rasa run` start-up costs here, ~9 go to importing Rasa,
TensorFlow and scikit-learn, and the live tests start about twenty Rasa servers. Python's
multiprocessing `forkserver` imports those modules once, in a server process of its own
(PRELOAD), and forks every Rasa command from it: the child then runs Rasa's own command line
(`rasa.__main__.main`) with the usual arguments, in its own session, working directory,
environment and log, so what answers is the server `rasa run` starts, minus the imports.

Why forking is safe here: the fork server has only imported modules. No model is loaded and
no TensorFlow session or thread pool exists until the child loads its model after the fork;
the idle worker threads of the two OpenBLAS copies (numpy's, scipy's) are re-created by
their own fork handlers.

Our own packages (`connectors`, `actions`, `shop_contract`) are not preloaded: they read
their settings from the environment, which is the child's and not the fork server's. A few
of Rasa's settings are read at import, though (IMPORT_TIME_SETTINGS); a command whose
environment sets them otherwise than the fork server's cannot be forked (`forkable`).
Python's own start-up settings (PYTHONHASHSEED, PYTHONWARNINGS, …) and the log-level
variables of TensorFlow and structlog are also the fork server's; nothing here depends on
them.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AUDIT_EVENT = "sandbox.warm_start"  # raised for every command started, like subprocess.Popen
SESSION_POLL_SECONDS = 0.05
# In this order: skops (which Rasa's LogisticRegressionClassifier loads its model with)
# builds its list of trusted types at import, looking each numpy ufunc up in every loaded
# module. Imported first, that takes ~1 CPU-s; after Rasa and TensorFlow (6,000 modules),
# ~7 CPU-s, which every forked server paid again when it loaded its model.
PRELOAD = [
    "skops.io",
    "rasa.__main__",
    "rasa.core.run",
    "rasa.core.agent",
    "rasa.core.actions.forms",
    "rasa.core.actions.two_stage_fallback",
    "rasa.engine.recipes.default_components",
    "rasa.graph_components.validators.default_recipe_validator",
    "rasa.graph_components.validators.finetuning_validator",
    "rasa.model_training",
    "tensorflow",
]

# Environment variables Rasa reads when its modules are imported (module-level constants).
IMPORT_TIME_SETTINGS = ("TICKET_LOCK_LIFETIME", "MAX_NUMBER_OF_PREDICTIONS", "FORCE_JSON_LOGGING")


@cache
def _server_settings() -> dict[str, str | None]:
    """IMPORT_TIME_SETTINGS in the fork server, which starts with our environment as it is
    at the first fork (`_context` takes them then)."""
    return {name: os.environ.get(name) for name in IMPORT_TIME_SETTINGS}


def forkable(env: Mapping[str, str]) -> bool:
    """True when a Rasa command with the environment `env` behaves the same forked from the
    fork server (which has our environment) as started on its own."""
    return all(env.get(name) == value for name, value in _server_settings().items())


class ForkedCommand:
    """A Rasa command running in a child of the fork server, with the part of
    `subprocess.Popen`'s interface the launcher and the tests use: `pid`, `args`, `poll`,
    `wait` (exit code, negative for a signal that killed it; 1 when a SIGINT it did not
    handle itself stopped it, which multiprocessing reports so)."""

    def __init__(self, process: BaseProcess, args: Sequence[str]) -> None:
        self._process = process
        self.args = list(args)

    @property
    def pid(self) -> int:
        pid = self._process.pid
        assert pid is not None  # set by start()
        return pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code


@cache
def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload(PRELOAD)
    _server_settings()  # taken now: the fork server starts with the next Process
    return context


def run_rasa(
    argv: list[str], env: dict[str, str], cwd: str, log: str | None, session_ready: Any
) -> None:
    """In the forked child: becomes a command-line `rasa` process and runs `argv`."""
    if log is not None:  # first, so that every error below is in the log
        output = os.open(log, os.O_WRONLY | os.O_APPEND)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
    os.setsid()  # a process group of its own, as the launcher's spawn gives its commands
    session_ready.set()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["rasa", *argv]
    import rasa.__main__

    rasa.__main__.main()


def fork_rasa(
    command: Sequence[str], env: Mapping[str, str], log: Path | None = None, cwd: Path = ROOT
) -> ForkedCommand:
    """Starts `command` (`[path to rasa, subcommand, ...]`, as for the launcher's `spawn`)
    from the fork server; its output goes to `log` (created here, as `spawn` does), or
    without one to the fork server's. `env` must be `forkable`. Returns once the command
    has a session of its own, so that `os.killpg(pid)` reaches it."""
    if not forkable(env):
        raise ValueError(f"{IMPORT_TIME_SETTINGS} differ from the fork server's: start it")
    argv = [str(arg) for arg in command[1:]]
    sys.audit(AUDIT_EVENT, ["rasa", *argv])
    if log is not None:
        log.write_bytes(b"")
    context = _context()
    session_ready = context.Event()
    process = context.Process(
        target=run_rasa,
        args=(argv, dict(env), str(cwd), None if log is None else str(log), session_ready),
        # multiprocessing stops daemonic children when this process exits normally (not
        # when it is killed: then they outlive it, as Popen's children would)
        daemon=True,
    )
    process.start()
    while not session_ready.wait(SESSION_POLL_SECONDS) and process.exitcode is None:
        pass
    return ForkedCommand(process, ["rasa", *argv])
