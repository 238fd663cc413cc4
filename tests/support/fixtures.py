"""Pytest fixtures that run the emulators for one test each, or for one test module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import pytest

from sandbox.graph_api import GraphApiEmulator
from sandbox.loopback import LoopbackServer
from sandbox.stripe_api import StripeEmulator

Server = TypeVar("Server", bound=LoopbackServer)


def _running(fake: Server) -> Iterator[Server]:
    """Starts `fake`, yields it, and stops it however the test ends."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_graph() -> Iterator[GraphApiEmulator]:
    """A fake Graph API listening on loopback for the duration of one test."""
    yield from _running(GraphApiEmulator())


@pytest.fixture(scope="module")
def graph_api() -> Iterator[GraphApiEmulator]:
    """A fake Graph API listening on loopback for the duration of one test module."""
    yield from _running(GraphApiEmulator())


@pytest.fixture
def fake_stripe() -> Iterator[StripeEmulator]:
    """A fake Stripe API on loopback for one test, with a fresh random test-mode key."""
    yield from _running(StripeEmulator("sk_test_" + secrets.token_hex(12)))


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeEmulator]:
    """A fake Stripe API on loopback for one test module, with a random test-mode key."""
    yield from _running(StripeEmulator("sk_test_" + secrets.token_hex(12)))
