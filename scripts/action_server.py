"""The action server: rasa_sdk's own app, on this machine only unless it has a token.

`rasa run actions` listens on every interface (rasa_sdk's default SANIC_HOST 0.0.0.0) and
runs any action for anyone who reaches the port — sending payment links, confirming
orders. This entry point serves the same app (rasa_sdk.endpoint.create_app) but:
- listens on ACTION_SERVER_HOST (or SANIC_HOST), 127.0.0.1 by default;
- with ACTION_SERVER_TOKEN set, `/webhook` and `/actions` need
  `Authorization: Bearer <token>` (401 without, 403 wrong); Rasa sends it from the
  `action_endpoint`'s `headers` in endpoints.yml (make run writes them);
- refuses to start, with one line, when it would listen beyond loopback without a token,
  or when a setting of the actions is malformed (actions/settings.py), rather than failing
  inside an action later.
`/health` stays open for probes.

    python -m scripts.action_server --actions actions --port 5055
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions.settings import ActionServerSettings, action_settings
from shop_contract.bearer import bearer_refusal
from shop_contract.env_settings import ConfigError, load_env_file

OPEN_PATHS = ("/health",)


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
        load_env_file()
        server = ActionServerSettings.from_env(os.environ)
        action_settings()  # a malformed setting stops start-up here, not inside an action
    except ConfigError as error:
        print(f"action server: {error}", file=sys.stderr)
        return 2
    utils.configure_colored_logging(server.log_level)
    utils.update_sanic_log_level()
    app = build_app(args.actions, server.token)
    logging.getLogger(__name__).info(
        "action server on http://%s:%s (%s)",
        server.listen_host,
        args.port,
        "token" if server.token else "no token",
    )
    app.run(server.listen_host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
