"""The action server: rasa_sdk's own app, on this machine only unless it has a token.

`rasa run actions` listens on every interface (rasa_sdk's default SANIC_HOST 0.0.0.0) and
runs any action for anyone who reaches the port — sending payment links, confirming
orders. This entry point serves the same app (rasa_sdk.endpoint.create_app) but:
- listens on ACTION_SERVER_HOST (or SANIC_HOST), 127.0.0.1 by default;
- with ACTION_SERVER_TOKEN set, `/webhook` and `/actions` need
  `Authorization: Bearer <token>` (401 without, 403 wrong); Rasa sends it from the
  `action_endpoint`'s `headers` in endpoints.yml (make run writes them);
- refuses to start, with one line, when it would listen beyond loopback without a token.
`/health` stays open for probes.

    python -m scripts.action_server --actions actions --port 5055
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from shop_contract.bearer import bearer_refusal

TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"  # noqa: S105 - the variable's name
HOST_VARIABLES = ("ACTION_SERVER_HOST", "SANIC_HOST")
DEFAULT_HOST = "127.0.0.1"
OPEN_PATHS = ("/health",)


class StartupError(ValueError):
    """The server must not start as configured; the message says why and what to do."""


def listen_host(environ: Mapping[str, str]) -> str:
    """ACTION_SERVER_HOST, else SANIC_HOST (what rasa_sdk reads), else loopback."""
    for name in HOST_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return DEFAULT_HOST


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def access_settings(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(host to listen on, token or None); StartupError when wider than loopback, tokenless."""
    host = listen_host(environ)
    token = environ.get(TOKEN_VARIABLE, "").strip() or None
    if token is None and not is_loopback(host):
        raise StartupError(
            f"action server: listening on {host} needs {TOKEN_VARIABLE} (anyone reaching the "
            f"port could run the shop's actions); set it, or listen on {DEFAULT_HOST}"
        )
    return host, token


def token_answer(request: Request, token: str) -> HTTPResponse | None:
    """None when the request may go on: an open path or the right bearer token."""
    if request.path in OPEN_PATHS:
        return None
    refusal = bearer_refusal(request.headers.get("Authorization"), token)
    if refusal is None:
        return None
    status, why = refusal
    return response.json({"error": why}, status=status)


def build_app(actions: str, token: str | None) -> Sanic:
    """rasa_sdk's app for `actions`, behind `token` when there is one."""
    app: Sanic = create_app(actions)
    if token:

        async def require_token(request: Request) -> HTTPResponse | None:
            return token_answer(request, token)

        app.register_middleware(require_token, "request")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", default="actions", help="package of the actions")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    try:
        host, token = access_settings(os.environ)
    except StartupError as error:
        print(error, file=sys.stderr)
        return 2
    utils.configure_colored_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    utils.update_sanic_log_level()
    app = build_app(args.actions, token)
    logging.getLogger(__name__).info(
        "action server on http://%s:%s (%s)", host, args.port, "token" if token else "no token"
    )
    app.run(host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
