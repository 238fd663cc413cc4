"""The base of the emulators: an aiohttp.web server on loopback, on its own event loop.

The server runs in a daemon thread, so synchronous tests and async code alike reach it over
TCP, through the same client code as production. Subclasses answer every request in
`_handle`; this class starts and stops the server, listens on 127.0.0.1 (on a free port
unless one is given: the sandbox uses fixed ones), and can refuse connections for a while
(an outage) and then accept them again on the same port.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

from aiohttp import web

CONTROL_TIMEOUT_SECONDS = 5.0
HOST = "127.0.0.1"

T = TypeVar("T")


class LoopbackServer(ABC):
    """An HTTP server on 127.0.0.1 whose every request goes to `_handle`."""

    #: The name of the server thread.
    thread_name: ClassVar[str] = "loopback-server"

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Starts the server thread and listens on 127.0.0.1 (a free port unless given)."""
        if self._loop is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        self._call(self._start())

    def stop(self) -> None:
        """Closes every connection and the listening socket, and ends the server thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._call(self._cancel_background())
        if self._runner is not None:
            self._call(self._runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=CONTROL_TIMEOUT_SECONDS)
        loop.close()
        self._loop = self._thread = None
        self._runner = self._site = None

    @property
    def port(self) -> int:
        """The port the server listens on (it keeps it through refuse/accept_connections)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        return self._port

    @property
    def origin(self) -> str:
        """http://127.0.0.1:PORT, which the subclasses' `base_url` builds on."""
        return f"http://{HOST}:{self.port}"

    def refuse_connections(self) -> None:
        """Simulates an outage: closes the listening socket and every open connection."""
        self._call(self._refuse())

    def accept_connections(self) -> None:
        """Ends the outage: listens again, on the same port."""
        self._call(self._listen(self.port))

    @abstractmethod
    async def _handle(self, request: web.Request) -> web.Response:
        """The answer to one request, whatever its method and path."""

    @property
    def busy(self) -> bool:
        """True while background work it started (status reports, event deliveries) runs."""
        return bool(self._background)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Runs `coroutine` in the background on the server loop (call it from the loop),
        keeping a reference so the task is not garbage-collected mid-flight."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_background(self) -> None:
        """Ends the background work still running (status reports, event deliveries)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the server loop and waits for its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=CONTROL_TIMEOUT_SECONDS)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        self._runner = runner
        await self._listen(self._requested_port)

    async def _listen(self, port: int) -> None:
        if self._runner is None or self._site is not None:
            return
        site = web.TCPSite(self._runner, HOST, port, reuse_address=True)
        await site.start()
        self._site = site
        self._port = self._runner.addresses[0][1]

    async def _refuse(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            self._runner.server.pre_shutdown()
