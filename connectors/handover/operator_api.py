"""The operator API for hand-overs, under /webhooks/whatsapp/operator/:

    GET  /operator/handovers               the open hand-overs
    POST /operator/handovers/<ref>/reply   {"text": "…"} to the customer; 202 once queued
    POST /operator/handovers/<ref>/resume  the bot answers the customer again

Off (404 for every path) while OPERATOR_API_TOKEN is unset; otherwise every request needs
`Authorization: Bearer <token>` (401 without it or with a wrong one; compared in constant
time). A bad body is a 400 saying what is wrong, an unknown reference a 404, a hand-over that
has ended a 409. A reply may carry an `Idempotency-Key` header: a retried request with the
same key sends the reply once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.json_body import parse_json
from connectors.handover.desk import (
    MAX_REPLY_CHARACTERS,
    HandoverDesk,
    HandoverEnded,
    HandoverError,
    ReplyKeyReused,
    UnknownHandover,
)
from connectors.handover.pause import HandoverPause
from connectors.storage.handovers import Handover
from shop_contract.bearer import bearer_refusal

MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BadRequest(Exception):
    """A 400, with what is wrong."""


def listed(handover: Handover) -> dict[str, Any]:
    """A hand-over as the API shows it: no customer id, only the reference."""
    return {
        "ref": handover.ref,
        "reason": handover.reason,
        "status": handover.status,
        "opened_at": handover.opened_at,
        "staff_replied_at": handover.staff_replied_at,
    }


def reply_text(body: bytes) -> str:
    """The reply's text from a JSON body {"text": "…"}; BadRequest saying what is wrong."""
    try:
        document = parse_json(body)
    except ValueError:
        raise BadRequest('the body must be JSON: {"text": "…"}') from None
    text = document.get("text") if isinstance(document, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise BadRequest('"text" is required: the reply to send to the customer')
    if len(text) > MAX_REPLY_CHARACTERS:
        raise BadRequest(f'"text" is longer than WhatsApp\'s {MAX_REPLY_CHARACTERS} characters')
    return text.strip()


class OperatorApi:
    """Answers the operator routes; the channel's blueprint maps them here."""

    def __init__(self, token: str | None, desk: HandoverDesk, pause: HandoverPause) -> None:
        self.token = token
        self.desk = desk
        self.pause = pause

    def refusal(self, request: Request) -> HTTPResponse | None:
        """The answer to a request the API must not serve (off, or not authenticated)."""
        if self.token is None:
            return response.json({"error": "not found"}, status=404)
        if bearer_refusal(request.headers.get("Authorization"), self.token) is not None:
            return response.json(
                {"error": "missing or wrong bearer token (OPERATOR_API_TOKEN)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="operator"'},
            )
        return None

    async def handovers(self) -> HTTPResponse:
        open_ones = await asyncio.to_thread(self.desk.store.handovers.listing)
        return response.json({"handovers": [listed(handover) for handover in open_ones]})

    async def reply(self, request: Request, ref: str) -> HTTPResponse:
        idempotency_key = request.headers.get("Idempotency-Key")
        try:
            if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
                raise BadRequest("Idempotency-Key: 1 to 64 letters, digits, '-' or '_'")
            text = reply_text(request.body or b"")
            await asyncio.to_thread(self.desk.reply, ref, text, idempotency_key)
        except BadRequest as error:
            return response.json({"error": str(error)}, status=400)
        except (UnknownHandover, HandoverEnded, ReplyKeyReused) as error:
            return refused(error)
        self.pause.outbox_wake.set()
        return response.json({"ref": ref, "status": "queued"}, status=202)

    async def resume(self, ref: str) -> HTTPResponse:
        try:
            await self.pause.end(ref)
        except (UnknownHandover, HandoverEnded) as error:
            return refused(error)
        return response.json({"ref": ref, "status": "resumed"})


def refused(error: HandoverError) -> HTTPResponse:
    return response.json(
        {"error": str(error)}, status=404 if isinstance(error, UnknownHandover) else 409
    )
