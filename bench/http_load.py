"""A lean HTTP/1.1 load generator: keep-alive connections, prepared requests, latencies.

Lean on purpose: on a 2-core machine the client shares the CPU with the server, so it must
cost far less per request than the server does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What the connections did: answers by status, and each request's latency in ms."""

    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def post_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    deadline: float,
    result: LoadResult,
    max_requests: int | None,
) -> list[bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    bodies: list[bytes] = []
    sent = 0
    try:
        while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
            request = requests[sent % len(requests)]
            start = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            bodies.append(body)
            sent += 1
    finally:
        writer.close()
    return bodies


async def run_load(
    host: str,
    port: int,
    requests_per_connection: list[list[bytes]],
    seconds: float,
    max_requests: int | None = None,
) -> tuple[LoadResult, list[list[bytes]]]:
    """One connection per request list, each cycling through its list until time is up."""
    result = LoadResult(seconds=seconds)
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    bodies = await asyncio.gather(
        *(
            _connection(host, port, r, deadline, result, max_requests)
            for r in requests_per_connection
        )
    )
    result.seconds = time.perf_counter() - start
    return result, list(bodies)
