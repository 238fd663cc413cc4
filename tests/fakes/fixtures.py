"""Pytest fixtures that run the fakes for one test each, or for one test module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import pytest

from sandbox.loopback import LoopbackServer
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.stripe_api import FakeStripeApi

Server = TypeVar("Server", bound=LoopbackServer)


def _running(fake: Server) -> Iterator[Server]:
    """Starts `fake`, yields it, and stops it however the test ends."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_graph() -> Iterator[FakeGraphApi]:
    """A fake Graph API listening on loopback for the duration of one test."""
    yield from _running(FakeGraphApi())


@pytest.fixture(scope="module")
def graph_api() -> Iterator[FakeGraphApi]:
    """A fake Graph API listening on loopback for the duration of one test module."""
    yield from _running(FakeGraphApi())


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeApi]:
    """A fake Stripe API on loopback for one test, with a fresh random test-mode key."""
    yield from _running(FakeStripeApi("sk_test_" + secrets.token_hex(12)))


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripeApi]:
    """A fake Stripe API on loopback for one test module, with a random test-mode key."""
    yield from _running(FakeStripeApi("sk_test_" + secrets.token_hex(12)))
