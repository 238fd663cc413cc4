"""A Graph API emulator (the WhatsApp Cloud API side of Meta): a real HTTP server on loopback.

Built on `LoopbackServer`, so synchronous tests and async code alike reach it over TCP,
through the same client code as production. It checks each message send's shape as Meta
does (sandbox/message_rules.py, sandbox/commerce_rules.py for product messages against the
connected catalog), records every request, serves the Flow encryption-key
endpoints, and answers like Meta by default; it can be told to answer otherwise (errors,
slow answers) or to refuse connections for a while. Once `deliver_statuses_to` names our
webhook, each accepted message is followed by signed `sent`, `delivered` and `read` status
notifications, as WhatsApp sends them.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import itertools
import json
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox import meta
from sandbox.loopback import LoopbackServer
from sandbox.message_rules import ANY_VARIABLES, Account, InvalidMessage, check_message
from sandbox.webhooks import Delivery, deliver
from shop_contract.catalog import default_catalog

API_VERSION = "v23.0"
ORDER_FLOW_PATH = Path(__file__).resolve().parent.parent / "data" / "flows" / "order_flow.json"


@functools.cache
def order_flow() -> dict[str, Any]:
    """The project's order Flow JSON (what the sandbox publishes)."""
    flow: dict[str, Any] = json.loads(ORDER_FLOW_PATH.read_text(encoding="utf-8"))
    return flow


def shop_catalog_items() -> dict[str, frozenset[str]]:
    """The sandbox's Meta catalog: the retailer ids data/catalog.yml maps products to,
    under the sandbox's catalog id."""
    items = frozenset(p.retailer_id for p in default_catalog() if p.retailer_id)
    return {meta.CATALOG_ID: items}


_VERSION = re.compile(r"v\d+\.\d+")

#: (status, body, headers) or (status, body, headers, delay in seconds before answering).
QueuedResponse: TypeAlias = (
    tuple[int, dict[str, Any] | str, dict[str, str]]
    | tuple[int, dict[str, Any] | str, dict[str, str], float]
)


@dataclass
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    form: dict[str, str] | None
    received_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class SentMessage:
    """A message send Meta accepted: its id, recipient (`to` or `recipient`) and body."""

    id: str
    recipient: str
    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class _Canned:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str]
    delay: float


#: Seconds after an accepted send at which WhatsApp reports it sent, delivered and read.
STATUS_DELAYS = (("sent", 0.2), ("delivered", 0.5), ("read", 1.5))


class GraphApiEmulator(LoopbackServer):
    """The Graph API endpoints the bot uses, for one business phone number."""

    thread_name = "graph-api-emulator"

    def __init__(
        self,
        port: int = 0,
        access_token: str | None = None,
        flows: dict[str, dict[str, Any]] | None = None,
        templates: dict[str, int] | None = None,
        message_id_prefix: str = "EMU",
        catalogs: dict[str, frozenset[str]] | None = None,
    ) -> None:
        super().__init__(port)
        # The bot keeps the ids of what it sent in its database: a sandbox that starts again
        # on the same database gives its messages a prefix of its own.
        self.message_id_prefix = message_id_prefix
        self.phone_number_id = meta.PHONE_NUMBER_ID
        self.access_token = access_token or secrets.token_urlsafe(32)
        # Published Flow id -> Flow JSON; without any, every id is the project's order Flow.
        self.flows: dict[str, dict[str, Any]] = dict(flows or {})
        # Approved template name -> its number of body variables; without any, every
        # template is approved with any number of them.
        self.templates: dict[str, int] = dict(templates or {})
        # Catalog id -> the retailer ids of its items: the commerce catalogs connected to the
        # account (the project's own catalog by default).
        self.catalogs = shop_catalog_items() if catalogs is None else dict(catalogs)
        self.requests: list[RecordedRequest] = []
        self.public_key: str | None = None
        self.deliveries: list[Delivery] = []
        self._statuses: dict[str, str] = {}  # message id -> the last status reported
        self._status_webhook: tuple[str, str] | None = None
        self._queued: deque[_Canned] = deque()
        self._message_numbers = itertools.count(1)
        self._accepted: list[SentMessage] = []

    def deliver_statuses_to(self, webhook_url: str, app_secret: str) -> None:
        """From now on, report each accepted message's statuses to `webhook_url`, signed."""
        with self._lock:
            self._status_webhook = (webhook_url, app_secret)

    @property
    def base_url(self) -> str:
        """The API base the client is configured with, e.g. http://127.0.0.1:PORT/v23.0."""
        return f"{self.origin}/{API_VERSION}"

    def messages(self) -> list[dict[str, Any]]:
        """JSON bodies of the message sends received (read receipts left out), in order,
        whatever the answer was."""
        with self._lock:
            recorded = list(self.requests)
        return [
            r.json
            for r in recorded
            if r.method == "POST"
            and r.path.endswith("/messages")
            and isinstance(r.json, dict)
            and r.json.get("status") != "read"
        ]

    def accepted(self) -> list[SentMessage]:
        """The message sends Meta accepted, in order, with the ids it gave them."""
        with self._lock:
            return list(self._accepted)

    def reported_statuses(self) -> dict[str, str]:
        """The last status reported to our webhook for each accepted message, by its id."""
        with self._lock:
            return dict(self._statuses)

    def queue_responses(self, *responses: QueuedResponse) -> None:
        """The next requests, whatever their path, get these answers in order."""
        canned = [_Canned(r[0], r[1], r[2], r[3] if len(r) == 4 else 0.0) for r in responses]
        with self._lock:
            self._queued.extend(canned)

    async def _handle(self, request: web.Request) -> web.Response:
        recorded = await _record(request)
        with self._lock:
            self.requests.append(recorded)
            canned = self._queued.popleft() if self._queued else None
        if canned is not None:
            await asyncio.sleep(canned.delay)
            return _respond(canned.status, canned.body, canned.headers)
        expected = f"Bearer {self.access_token}".encode()
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
            return _error(401, "Invalid OAuth access token", 190)
        return self._answer(recorded)

    def _answer(self, request: RecordedRequest) -> web.Response:
        """Meta's answer to an authorised request."""
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or not _VERSION.fullmatch(parts[0]) or parts[1] != self.phone_number_id:
            return _unknown_path()
        edge = parts[2]
        if edge == "messages" and request.method == "POST":
            return self._message(request.json)
        if edge == "whatsapp_business_encryption" and request.method == "POST":
            return self._store_key(request.form)
        if edge == "whatsapp_business_encryption" and request.method == "GET":
            return self._key_status()
        return _unknown_path()

    def _message(self, body: Any) -> web.Response:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _error(400, "(#100) The parameter messaging_product is required.", 100)
        if body.get("status") == "read":
            return _respond(200, {"success": True}, {})
        recipient = body.get("to") or body.get("recipient")
        if not recipient:
            return _error(400, "(#100) The parameter to is required.", 100)
        try:
            account = Account(self._published_flow, self._template_variables, self.catalogs.get)
            check_message(body, account)
        except InvalidMessage as invalid:
            return _error(400, f"(#{invalid.code}) {invalid.details}", invalid.code)
        with self._lock:
            message_id = meta.wamid(
                str(recipient), f"{self.message_id_prefix}{next(self._message_numbers)}"
            )
            self._accepted.append(SentMessage(message_id, str(recipient), body, time.time()))
            webhook = self._status_webhook
        if webhook is not None:
            self._spawn(self._report_statuses(message_id, str(recipient), *webhook))
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": recipient, "wa_id": body.get("to", recipient)}],
            "messages": [{"id": message_id}],
        }
        return _respond(200, answer, {})

    async def _report_statuses(
        self, message_id: str, recipient: str, url: str, app_secret: str
    ) -> None:
        waited = 0.0
        for state, at in STATUS_DELAYS:
            await asyncio.sleep(at - waited)
            waited = at
            document = meta.notification(statuses=[meta.status(message_id, state, recipient)])
            delivery = await deliver(url, document, "meta", app_secret, f"status {state}")
            with self._lock:
                self.deliveries.append(delivery)
                if 200 <= delivery.status < 300:
                    self._statuses[message_id] = state

    def _published_flow(self, flow_id: str) -> dict[str, Any] | None:
        if not self.flows:
            return order_flow()
        return self.flows.get(flow_id)

    def _template_variables(self, name: str) -> int | None:
        if not self.templates:
            return ANY_VARIABLES
        return self.templates.get(name)

    def _store_key(self, form: dict[str, str] | None) -> web.Response:
        key = (form or {}).get("business_public_key")
        if not key:
            return _error(400, "(#100) The parameter business_public_key is required.", 100)
        with self._lock:
            self.public_key = key
        return _respond(200, {"success": True}, {})

    def _key_status(self) -> web.Response:
        with self._lock:
            key = self.public_key
        status = "VALID" if key else "MISMATCH"
        entry = {"business_public_key": key or "", "business_public_key_signature_status": status}
        return _respond(200, {"data": [entry]}, {})


async def _record(request: web.Request) -> RecordedRequest:
    raw = await request.read()
    json_body: Any | None = None
    form: dict[str, str] | None = None
    if request.content_type == "application/json":
        try:
            json_body = json.loads(raw)
        except ValueError:
            json_body = None
    elif request.content_type == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    return RecordedRequest(request.method, request.path, dict(request.headers), json_body, form)


def _respond(status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> web.Response:
    if isinstance(body, str):
        return web.Response(status=status, text=body, headers=headers)
    return web.Response(
        status=status,
        text=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


def _error(status: int, message: str, code: int) -> web.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKE"}
    return _respond(status, {"error": error}, {})


def _unknown_path() -> web.Response:
    return _error(404, "Unknown path components", 2500)
