"""Keeps TensorFlow on one worker: a test that imports Rasa's core (which loads TensorFlow,
~5 s and ~1 GB) must be marked `rasa_core`, or it fails.

The marked tests run on one pytest-xdist worker (tests/support/worker_groups.py), so the
other workers never pay for the import; the modules import Rasa's core inside the tests
that need it, not at the top, since every worker collects every module. One unmarked test
that loads it would quietly put the cost back on every worker that runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Generator

import pytest

from tests.support.phase_guard import PhaseGuard

MARKER = "rasa_core"
WATCHED = "tensorflow"


class RasaCoreGuard(PhaseGuard):
    """Fails an unmarked test during whose set-up or run TensorFlow was first imported."""

    def watch(self, item: pytest.Item, phase: str) -> Generator[None, None, None]:
        loaded_before = WATCHED in sys.modules
        if not loaded_before and item.get_closest_marker(MARKER) is not None:
            # Before Rasa's core, as scripts/rasa_cli.py does it: ~7 CPU-s less when a test
            # loads a model (skops' import-time scan of every loaded module).
            import skops.io  # noqa: F401
        yield
        if loaded_before or WATCHED not in sys.modules:
            return
        if item.get_closest_marker(MARKER) is None:
            pytest.fail(
                f"{item.nodeid} {phase} and imported Rasa's core (TensorFlow): mark it "
                f"@pytest.mark.{MARKER} (or set pytestmark = pytest.mark.{MARKER} in its "
                "module) so that it runs on the one worker that loads it",
                pytrace=False,
            )


def install(config: pytest.Config) -> None:
    """Registers the guard (called by conftest's pytest_configure)."""
    config.pluginmanager.register(RasaCoreGuard(), "rasa-core-guard")
