"""A fake WASenderApi send-message endpoint: a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeWaSender:
    """Records POST /api/send-message bodies; answers queued (status, headers) first."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.sent: list[dict[str, Any]] = []
        self.queued: deque[tuple[int, dict[str, str]]] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._answer(401, {"success": False, "message": "Unauthenticated"})
                    return
                if fake.queued:
                    status, headers = fake.queued.popleft()
                    self._answer(status, {"success": False, "message": "busy"}, headers)
                    return
                fake.sent.append(body)
                self._answer(200, {"success": True, "data": {"msgId": len(fake.sent)}})

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
