"""`make orders` against loopback HTTP servers standing for the orders API: it never follows a
redirect with the bearer token, always sends a refund with an Idempotency-Key and says how
to retry it safely when the outcome is unclear, and waits longer than a refund can take."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.orders.refunds import REFUND_WORST_CASE_SECONDS
from scripts import orders_cli

TOKEN = "t" * 32
Answer = Callable[[http.server.BaseHTTPRequestHandler], None]


class Loopback:
    """A loopback HTTP server answering every request with `answer`, keeping the headers."""

    def __init__(self, answer: Answer) -> None:
        self.seen: list[dict[str, str]] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                seen.append(dict(self.headers))
                answer(self)

            do_GET = do_POST = handle_one

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_answer(status: int, body: dict[str, Any]) -> Answer:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(json.dumps(body).encode())

    return answer


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Loopback]]:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("ORDERS_API_TOKEN", TOKEN)
    started: list[Loopback] = []
    yield started
    for server in started:
        server.close()


def serve(monkeypatch: pytest.MonkeyPatch, started: list[Loopback], answer: Answer) -> Loopback:
    server = Loopback(answer)
    started.append(server)
    monkeypatch.setenv("ORDERS_API_URL", f"{server.url}/webhooks/whatsapp/orders")
    return server


def test_a_redirect_is_an_error_and_the_token_stays_home(
    monkeypatch: pytest.MonkeyPatch, servers: list[Loopback], capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = Loopback(json_answer(200, {"orders": []}))
    servers.append(elsewhere)

    def redirect(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"http://localhost:{elsewhere.server.server_port}/x")
        handler.end_headers()

    serve(monkeypatch, servers, redirect)
    assert orders_cli.main(["list"]) == 1
    assert "(302)" in capsys.readouterr().err
    assert elsewhere.seen == []  # never followed, so the token went nowhere else


def test_a_refund_always_has_a_key_and_a_failure_says_how_to_retry(
    monkeypatch: pytest.MonkeyPatch, servers: list[Loopback], capsys: pytest.CaptureFixture[str]
) -> None:
    failing = serve(monkeypatch, servers, json_answer(502, {"error": "Stripe failed"}))
    assert orders_cli.main(["refund", "ORD-PAID0001", "--amount", "500"]) == orders_cli.UNCLEAR
    key = failing.seen[0]["Idempotency-Key"]
    assert len(key) == 36  # a UUID, new per command
    said = capsys.readouterr().err
    assert f"repeat with --key {key} to retry safely" in said and TOKEN not in said
    assert orders_cli.main(["refund", "ORD-PAID0001", "--key", key]) == orders_cli.UNCLEAR
    assert failing.seen[1]["Idempotency-Key"] == key
    assert orders_cli.main(["refund", "ORD-PAID0001"]) == orders_cli.UNCLEAR
    assert failing.seen[2]["Idempotency-Key"] not in (key, None)


def test_a_replayed_refund_says_so(
    monkeypatch: pytest.MonkeyPatch, servers: list[Loopback], capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"currency": "eur", "repeated": True,
              "refund": {"id": "re_1", "amount": 500, "status": "succeeded"}}  # fmt: skip
    serve(monkeypatch, servers, json_answer(200, answer))
    assert orders_cli.main(["refund", "ORD-PAID0001", "--key", "k1"]) == 0
    assert "it had been made already" in capsys.readouterr().out


def test_a_garbage_answer_keeps_the_key_and_a_refusal_has_no_retry_hint(
    monkeypatch: pytest.MonkeyPatch, servers: list[Loopback], capsys: pytest.CaptureFixture[str]
) -> None:
    def garbage(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(b"<html>proxy error</html>")

    serve(monkeypatch, servers, garbage)
    assert orders_cli.main(["refund", "ORD-PAID0001", "--key", "k1"]) == orders_cli.UNCLEAR
    said = capsys.readouterr().err
    assert "idempotency key k1" in said and "repeat with --key k1" in said
    serve(monkeypatch, servers, json_answer(409, {"error": "used for a refund of 700"}))
    assert orders_cli.main(["refund", "ORD-PAID0001", "--key", "k1"]) == 1
    assert "repeat with --key" not in capsys.readouterr().err


def test_an_unreachable_bot_is_an_unclear_outcome_not_a_missing_setup(
    monkeypatch: pytest.MonkeyPatch, servers: list[Loopback], capsys: pytest.CaptureFixture[str]
) -> None:
    gone = serve(monkeypatch, servers, json_answer(200, {}))
    gone.close()
    assert orders_cli.main(["refund", "ORD-PAID0001", "--key", "k1"]) == orders_cli.UNCLEAR
    assert "repeat with --key k1" in capsys.readouterr().err


def test_the_cli_waits_longer_than_a_refund_can_take() -> None:
    assert orders_cli.TIMEOUT_SECONDS > REFUND_WORST_CASE_SECONDS
    assert REFUND_WORST_CASE_SECONDS < 60  # Sanic's response timeout would cut it short
