"""Pytest fixtures that run the fakes for one test each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.stripe_api import FakeStripeApi


@pytest.fixture
def fake_graph() -> Iterator[FakeGraphApi]:
    """A fake Graph API listening on loopback for the duration of one test."""
    fake = FakeGraphApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeApi]:
    """A fake Stripe API on loopback for one test, with a fresh random test-mode key."""
    fake = FakeStripeApi("sk_test_" + secrets.token_hex(12))
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
