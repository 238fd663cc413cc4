"""Stripe's wire format: form-encoded requests in (`line_items[0][price]=…`), JSON out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.stripe_api.errors import StripeApiError

_KEY_PART = re.compile(r"\[([^\]]*)\]")


@dataclass
class StripeRequest:
    """One request as the fake received it; `params` decoded into nested dicts and lists."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


async def read_request(request: web.Request) -> StripeRequest:
    """The request as Stripe reads it: the form body, or for a GET the query string."""
    raw = await request.read()
    pairs = parse_qsl(raw.decode() or request.query_string, keep_blank_values=True)
    return StripeRequest(request.method, request.path, dict(request.headers), decode_form(pairs))


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: `a[0][b]=x` → {"a": [{"b": "x"}]}.

    Values stay strings, as Stripe receives them. Indexed keys become lists in index order.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head = raw_key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(raw_key[len(head) :])]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        if last == "":  # `a[]=x`: append
            last = str(len(node))
        node[last] = value
    return {key: _lists_from_indexes(value) for key, value in root.items()}


def _lists_from_indexes(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexes(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def error_response(error: StripeApiError) -> web.Response:
    return web.json_response({"error": error.body}, status=error.status, headers=error.headers)
