"""The `live` marker's guard (tests/support/live_marker.py): a test that starts a server, or
uses a fixture that did, fails unless it is marked `live`; other processes are fine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.live_marker import starts_server

ROOT = Path(__file__).resolve().parent.parent

# `true` stands in for each server: the guard judges the command, not what it does.
INNER_TESTS = """
import subprocess
import sys

import pytest

from sandbox.warm_start import AUDIT_EVENT

ACTION_SERVER = ["true", "-m", "scripts.action_server", "--port", "5055"]


@pytest.fixture(scope="module")
def server():
    subprocess.run(ACTION_SERVER, check=True)


def test_unmarked_start():
    subprocess.run(["true", "-m", "sandbox"], check=True)


@pytest.mark.live
def test_marked_start():
    subprocess.run(ACTION_SERVER, check=True)


@pytest.mark.live
def test_marked_fixture_user(server):
    pass


def test_unmarked_fixture_user(server):
    pass


def test_other_processes():
    subprocess.run(["true", "-m", "scripts.privacy_cli", "keygen"], check=True)


def test_unmarked_forked_rasa():
    sys.audit(AUDIT_EVENT, ["rasa", "run", "--port", "5005"])  # what fork_rasa announces
"""


@pytest.mark.parametrize(
    ("argv", "server"),
    [
        (["/x/.venv/bin/rasa", "run", "--model", "m.tar.gz"], True),
        (["/x/.venv/bin/rasa", "shell"], True),
        (["/x/.venv/bin/rasa", "train", "--out", "models"], False),
        (["/x/.venv/bin/python", "-m", "scripts.rasa_cli", "run", "--model", "m"], True),
        (["/x/.venv/bin/python", "-m", "scripts.rasa_cli", "shell"], True),
        (["/x/.venv/bin/python", "-m", "scripts.rasa_cli", "train"], False),
        (["/x/.venv/bin/python", "-m", "scripts.rasa_cli"], False),
        (["/x/.venv/bin/python", "-m", "scripts.action_server", "--port", "1"], True),
        (["/x/.venv/bin/python", "-m", "sandbox"], True),
        (["bash", "scripts/run.sh", "serve"], True),
        (["/x/.venv/bin/python", "-m", "scripts.privacy_cli", "export"], False),
        (["/x/.venv/bin/lint-imports", "--no-cache"], False),
    ],
)
def test_which_commands_start_servers(argv: list[str], server: bool) -> None:
    assert starts_server(argv) is server


def test_unmarked_tests_that_start_servers_fail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(
        "from tests.support import live_marker\n\n"
        "def pytest_configure(config):\n"
        "    live_marker.install(config)\n"
    )
    pytester.makeini(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider\nmarkers =\n    live: x\n"
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-v")
    result.assert_outcomes(passed=3, failed=2, errors=1)  # the fixture user fails in setup
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_start FAILED*",
            "*test_marked_start PASSED*",
            "*test_marked_fixture_user PASSED*",
            "*test_unmarked_fixture_user ERROR*",
            "*test_other_processes PASSED*",
            "*test_unmarked_forked_rasa FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_fixture_user set up and uses fixtures ?'server'? that did: mark it*",
            "*test_unmarked_start ran and started ?'true -m sandbox'?: mark it @pytest.mark.live*",
            "*test_unmarked_forked_rasa ran and started ?'rasa run --port'?: mark it*",
        ]
    )
