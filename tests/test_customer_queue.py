"""CustomerQueues: one job at a time per customer, in order; customers run side by side."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from connectors.jobs.customer_queue import CustomerQueues


def recorder(log: list[str]) -> Callable[[str, float], Callable[[], Awaitable[None]]]:
    """Jobs that note their start and end in `log` and sleep `seconds` in between."""

    def job(name: str, seconds: float) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            log.append(f"start {name}")
            await asyncio.sleep(seconds)
            log.append(f"end {name}")

        return run

    return job


def test_one_customers_jobs_run_one_at_a_time_in_order() -> None:
    log: list[str] = []
    job = recorder(log)

    async def scenario() -> None:
        queues = CustomerQueues()
        queues.submit("customer-a", job("1", 0.15), "first")
        queues.submit("customer-a", job("2", 0.0), "second")
        queues.submit("customer-a", job("3", 0.05), "third")
        queues.submit("customer-a", job("4", 0.0), "fourth")
        await queues.drain()

    asyncio.run(scenario())

    assert log == [
        "start 1",
        "end 1",
        "start 2",
        "end 2",
        "start 3",
        "end 3",
        "start 4",
        "end 4",
    ]


def test_one_customers_jobs_take_the_sum_of_their_times() -> None:
    log: list[str] = []
    job = recorder(log)

    async def scenario() -> float:
        queues = CustomerQueues()
        started = time.monotonic()
        queues.submit("customer-a", job("1", 0.2), "first")
        queues.submit("customer-a", job("2", 0.2), "second")
        await queues.drain()
        return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.39


def test_different_customers_run_concurrently() -> None:
    log: list[str] = []
    job = recorder(log)

    async def scenario() -> float:
        queues = CustomerQueues()
        started = time.monotonic()
        queues.submit("customer-a", job("a", 0.2), "a")
        queues.submit("customer-b", job("b", 0.2), "b")
        await queues.drain()
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())

    assert 0.19 <= elapsed < 0.35
    assert log[:2] == ["start a", "start b"]


def test_failing_job_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    job = recorder(log)

    async def fails() -> None:
        log.append("start failing")
        raise RuntimeError("boom")

    async def scenario() -> None:
        queues = CustomerQueues()
        queues.submit("customer-a", job("1", 0.0), "first")
        queues.submit("customer-a", fails, "message wamid.FAIL")
        queues.submit("customer-a", job("3", 0.0), "third")
        await queues.drain()

    with caplog.at_level(logging.ERROR, logger="connectors.jobs.customer_queue"):
        asyncio.run(scenario())

    assert log == ["start 1", "end 1", "start failing", "start 3", "end 3"]
    failures = [r for r in caplog.records if r.name == "connectors.jobs.customer_queue"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "message wamid.FAIL" in failures[0].getMessage()
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is RuntimeError


def test_pending_drops_to_zero_and_the_locks_are_released() -> None:
    log: list[str] = []
    job = recorder(log)

    async def scenario() -> tuple[int, int, int, int]:
        queues = CustomerQueues()
        for n in range(3):
            queues.submit("customer-a", job(f"a{n}", 0.01), f"a{n}")
        queues.submit("customer-b", job("b", 0.01), "b")
        before = queues.pending
        await asyncio.sleep(0)
        locks_while_running = len(queues._locks)
        await queues.drain()
        return (
            before,
            locks_while_running,
            queues.pending,
            len(queues._locks) + len(queues._waiting),
        )

    before, locks_while_running, after, leftovers = asyncio.run(scenario())

    assert before == 4
    assert locks_while_running == 2
    assert after == 0
    assert leftovers == 0
    assert len(log) == 8


def test_drain_waits_for_jobs_submitted_by_jobs() -> None:
    log: list[str] = []
    job = recorder(log)

    async def scenario() -> int:
        queues = CustomerQueues()

        async def submits_more() -> None:
            log.append("parent")
            queues.submit("customer-b", job("child", 0.05), "child")

        queues.submit("customer-a", submits_more, "parent")
        await queues.drain()
        return queues.pending

    assert asyncio.run(scenario()) == 0
    assert log == ["parent", "start child", "end child"]
