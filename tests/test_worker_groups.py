"""How the tests are shared between pytest-xdist's workers (tests/support/worker_groups.py)
and the guard that keeps TensorFlow on one of them (tests/support/rasa_core_marker.py).

The inner sessions put a stand-in `tensorflow` module in sys.modules: the guard judges what
was imported, and the real one would cost seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
import sys

import pytest

from tests.support import rasa_core_marker, worker_groups

worker_groups.OURS = "conftest"  # the shared fixtures of this inner session are defined here


def pytest_configure(config):
    rasa_core_marker.install(config)


def pytest_collection_modifyitems(items):
    worker_groups.assign(items)


def pytest_report_collectionfinish(config, start_path, items):
    return [
        f"GROUP {item.name} {getattr(item.get_closest_marker('xdist_group'), 'args', ['-'])[0]}"
        for item in items
    ]


@pytest.fixture(scope="session")
def shared_server():
    yield "a session-scoped fixture of ours"


@pytest.fixture(scope="module")
def module_model():
    yield "a module-scoped fixture of ours"


@pytest.fixture(autouse=True)
def unload():
    yield
    sys.modules.pop("tensorflow", None)
"""

INNER_TESTS = """
import sys
import types

import pytest


def load():
    sys.modules["tensorflow"] = types.ModuleType("tensorflow")


@pytest.fixture
def loading_fixture():
    load()


def test_unmarked_import():
    load()


def test_unmarked_fixture_import(loading_fixture):
    pass


@pytest.mark.rasa_core
def test_marked_import():
    load()


@pytest.mark.rasa_core
def test_marked_with_module_fixture(module_model):
    load()


@pytest.mark.rasa_core
def test_marked_with_session_fixture(shared_server):
    pass


def test_module_fixture(module_model):
    pass


def test_plain():
    pass
"""


def test_rasa_core_tests_share_a_group_and_unmarked_imports_fail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makeini(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n"
        "markers =\n    rasa_core: x\n    xdist_group: x\n"
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-v")
    result.assert_outcomes(passed=5, failed=1, errors=1)  # the fixture's user fails in setup
    result.stdout.fnmatch_lines(
        [
            "GROUP test_marked_import rasa_core",  # grouped tests first, in their order
            "GROUP test_marked_with_module_fixture rasa_core",  # the marker wins over the module
            "GROUP test_marked_with_session_fixture shared_server",  # a shared server wins
            "GROUP test_module_fixture test_inner.py",
            "GROUP test_unmarked_import -",
            "GROUP test_unmarked_fixture_import -",
            "GROUP test_plain -",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_fixture_import set up and imported Rasa's core*",  # errors first
            "*test_unmarked_import ran and imported Rasa's core (TensorFlow): mark it "
            "@pytest.mark.rasa_core*",
        ]
    )
    assert "test_marked_import FAILED" not in result.stdout.str()
