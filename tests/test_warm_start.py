"""Rasa commands forked with Rasa imported (sandbox/warm_start.py) behave as started ones:
their output is in their log from the first line, `killpg` reaches them as soon as they are
started, `wait` times out as Popen's does, and a command whose import-time settings differ
from the fork server's is refused."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from sandbox.launcher import BIN, MODEL
from sandbox.processes import free_port, stop
from sandbox.warm_start import IMPORT_TIME_SETTINGS, fork_rasa

pytestmark = pytest.mark.live  # forks `rasa run`


def test_a_forked_command_writes_its_log_and_exits_with_its_code(tmp_path: Path) -> None:
    log = tmp_path / "version.log"
    assert fork_rasa([str(BIN / "rasa"), "--version"], os.environ, log, tmp_path).wait(60) == 0
    assert "Rasa Version" in log.read_text()
    refused = tmp_path / "refused.log"
    command = [str(BIN / "rasa"), "run", "--no-such-option"]
    assert fork_rasa(command, os.environ, refused, tmp_path).wait(60) == 2  # argparse's
    assert "unrecognized arguments: --no-such-option" in refused.read_text()


def test_a_forked_server_has_its_own_session_from_the_start(tmp_path: Path) -> None:
    command = [str(BIN / "rasa"), "run", "--model", str(MODEL), "--port", str(free_port())]
    server = fork_rasa(command, os.environ, tmp_path / "rasa.log", tmp_path)
    try:
        assert os.getpgid(server.pid) == server.pid
        with pytest.raises(subprocess.TimeoutExpired):
            server.wait(timeout=0.1)
        os.killpg(server.pid, signal.SIGKILL)
        assert server.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop([server])


def test_different_import_time_settings_are_refused(tmp_path: Path) -> None:
    env = {**os.environ, IMPORT_TIME_SETTINGS[0]: "7"}
    with pytest.raises(ValueError, match="differ from the fork server's"):
        fork_rasa([str(BIN / "rasa"), "--version"], env, tmp_path / "x.log", tmp_path)
