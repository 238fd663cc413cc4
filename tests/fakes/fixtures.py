"""Pytest fixtures that run the fakes for one test each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.graph_api import FakeGraphApi


@pytest.fixture
def fake_graph() -> Iterator[FakeGraphApi]:
    """A fake Graph API listening on loopback for the duration of one test."""
    fake = FakeGraphApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
