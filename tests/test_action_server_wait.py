"""The first replay waits for the action server: against a real HTTP server on loopback
that starts answering late, never answers, or is not there."""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp import web

from connectors.jobs.action_server import health_url, wait_for_actions


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serve(port: int, status: int) -> web.AppRunner:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=status)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def test_the_health_route_sits_beside_the_webhook() -> None:
    assert health_url("http://127.0.0.1:5055/webhook") == "http://127.0.0.1:5055/health"
    assert health_url("https://actions.example/bot/webhook") == "https://actions.example/bot/health"


def test_it_waits_until_an_action_server_starting_late_answers() -> None:
    port = free_port()

    async def run() -> tuple[bool, float]:
        started = time.monotonic()
        waiting = asyncio.create_task(wait_for_actions(f"http://127.0.0.1:{port}/webhook", 30))
        await asyncio.sleep(1.0)
        assert not waiting.done()  # nothing listens yet
        runner = await serve(port, 200)
        try:
            return await waiting, time.monotonic() - started
        finally:
            await runner.cleanup()

    ready, waited = asyncio.run(run())
    assert ready and waited >= 1.0


def test_any_answer_counts_and_none_is_waited_out() -> None:
    """Behind a gateway the route may want credentials (401) or redirect: the server is up."""
    port = free_port()

    async def run() -> bool:
        runner = await serve(port, 401)
        try:
            return await wait_for_actions(f"http://127.0.0.1:{port}/webhook", 5)
        finally:
            await runner.cleanup()

    assert asyncio.run(run()) is True
    started = time.monotonic()
    assert asyncio.run(wait_for_actions(f"http://127.0.0.1:{free_port()}/webhook", 0.5)) is False
    assert time.monotonic() - started >= 0.5
    assert asyncio.run(wait_for_actions(None)) is True  # a bot without custom actions
