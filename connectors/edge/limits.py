"""What the Rasa server exposes around our routes: checks at start-up and body limits.

Run by the WhatsApp channel when the server starts (whatever launched it: `make run`,
`rasa run`, a container), because Rasa itself only warns, or says nothing:
- Rasa's HTTP API (`--enable-api`) without `--auth-token` or a JWT secret lets anyone read
  and write every conversation: start-up stops.
- Sanic reads request bodies up to REQUEST_MAX_SIZE (100 MB by default) before a handler
  sees them. Without the HTTP API no route takes more than our webhooks' largest body, so
  the server-wide limit comes down to it; with the API on, Rasa's model and training-data
  uploads need the default, and our webhooks keep their own, smaller, limits by reading
  their bodies themselves (`read_body_within`), which refuses a declared Content-Length
  above the limit before reading a byte.
"""

from __future__ import annotations

import inspect
from typing import Any

from rasa.shared.utils.cli import print_error_and_exit
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request

_REQUIRES_AUTH_CLOSURE = {"token", "sufficient_scope"}  # rasa.server.requires_auth's


def _closure(handler: Any) -> dict[str, Any]:
    try:
        return dict(inspect.getclosurevars(handler).nonlocals)
    except TypeError:  # not a Python function (a partial, a callable object)
        return {}


def api_auth_tokens(app: Any) -> list[str | None]:
    """The auth token of each route of Rasa's HTTP API (None: no token). Rasa wraps every
    API route in `requires_auth`, which keeps the server's token in its closure."""
    closures = [_closure(route.handler) for route in app.router.routes]
    return [c["token"] for c in closures if c.keys() >= _REQUIRES_AUTH_CLOSURE]


def api_is_open(app: Any) -> bool:
    """True when Rasa's HTTP API is on with neither an auth token nor JWT."""
    if app.config.get("USE_JWT"):
        return False
    return any(token is None for token in api_auth_tokens(app))


def refuse_open_api(app: Any) -> None:
    """Stops start-up when Rasa's HTTP API would answer without authentication."""
    if api_is_open(app):
        print_error_and_exit(
            "Rasa's HTTP API is on (--enable-api) without --auth-token: anyone could read and "
            "change conversations. Set RASA_API_TOKEN (make run passes it), or leave the API off"
        )


def cap_request_size(app: Any, limit: int) -> None:
    """Lowers Sanic's server-wide body limit to `limit` when Rasa's HTTP API is off."""
    if not api_auth_tokens(app):
        app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, limit)


async def read_body_within(request: Request, limit: int) -> bool:
    """Reads the body of a streaming route; False, having read nothing more, when it is
    (or declares to be) longer than `limit` bytes."""
    request.stream.request_max_size = limit  # type: ignore[union-attr]
    try:
        await request.receive_body()  # type: ignore[no-untyped-call]
    except PayloadTooLarge:
        return False
    return True
