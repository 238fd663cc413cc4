"""The shape both marker guards share: a check around each test's set-up and its run."""

from __future__ import annotations

from collections.abc import Generator

import pytest


class PhaseGuard:
    """Runs `watch(item, phase)` around the set-up ("set up") and the call ("ran") of each
    test; `watch` yields once, where the phase runs, and may fail the test after it."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self.watch(item, "set up")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        yield from self.watch(item, "ran")

    def watch(self, item: pytest.Item, phase: str) -> Generator[None, None, None]:
        raise NotImplementedError
