"""Logs name customers by a keyed reference, never by their number."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from connectors import log_refs
from connectors.jobs.outbox import OutboxWorker
from connectors.storage.opening import open_store


def test_references_are_stable_keyed_and_do_not_contain_the_number() -> None:
    log_refs.configure("secret-one")
    first = log_refs.customer_ref("15550801234")
    assert first == log_refs.customer_ref("15550801234")
    assert first != log_refs.customer_ref("15550801235")
    assert "15550801234" not in first and first.startswith("c-")
    log_refs.configure("secret-two")
    assert log_refs.customer_ref("15550801234") != first  # without the key, no match


def test_a_delivery_failure_is_logged_without_the_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'refs.db'}")
    store.outbox.enqueue("evt:0", "15550809999", '{"type": "text", "text": {"body": "x"}}')

    async def refuse(customer: str, body: object) -> str | None:
        raise ConnectionError("down")

    with caplog.at_level(logging.WARNING):
        asyncio.run(OutboxWorker(store, refuse, 0.01, 0.01).run_once())
    assert "15550809999" not in caplog.text
    assert log_refs.customer_ref("15550809999") in caplog.text
