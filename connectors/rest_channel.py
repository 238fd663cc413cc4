"""Rasa's REST channel, safe to keep next to WhatsApp: a bearer token, and no typed intents.

Rasa's plain `rest` channel trusts its caller: any `sender` (a customer's number), any
`input_channel`, and text such as `/EXTERNAL_payment_succeeded` that Rasa parses as an
intent — anyone who reaches the port could confirm an order. This channel serves the same
route (POST /webhooks/rest/webhook) for tools and tests, but:
- with RASA_REST_TOKEN set, every request needs `Authorization: Bearer <token>` (401
  without one, 403 with a wrong one); the WhatsApp channel refuses to start next to a REST
  channel without a token (`refuse_open_rest_channels`);
- the text goes through the same filter as a tapped WhatsApp button: `/intent` only for
  intents a customer may send (never `EXTERNAL_*`, `flow_*` or Rasa's `/restart`…);
- the input channel is always `rest`, never what the body claims.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.shared.utils.cli import print_error_and_exit
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.settings import RestSettings
from connectors.whatsapp.intents import payload_text
from shop_contract.bearer import bearer_refusal
from shop_contract.env_settings import ConfigError, load_env_file

TOKEN_VARIABLE = "RASA_REST_TOKEN"  # noqa: S105 - the variable's name


def bearer_token_answer(request: Request, token: str) -> HTTPResponse | None:
    """None when the request carries `Authorization: Bearer <token>`, else a 401/403."""
    refusal = bearer_refusal(request.headers.get("Authorization"), token)
    if refusal is None:
        return None
    status, why = refusal
    return response.json({"error": why}, status=status)


class TokenRestInput(RestInput):
    """The REST channel behind RASA_REST_TOKEN (see the module's docstring)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TokenRestInput:
        """The token from RASA_REST_TOKEN, the env file read as the WhatsApp channel reads it
        (the channels start in credentials.yml's order, this one maybe first)."""
        try:
            load_env_file()
            token = RestSettings.from_env(os.environ).token
        except ConfigError as error:
            print_error_and_exit(f"REST channel: {error}")
        return cls(token)

    def _extract_message(self, req: Request) -> str | None:
        message = super()._extract_message(req)
        return payload_text(message, message) if isinstance(message, str) else None

    def _extract_input_channel(self, req: Request) -> str:
        return str(self.name())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        webhook: Blueprint = super().blueprint(on_new_message)
        token = self.token
        if token:

            async def require_token(request: Request) -> HTTPResponse | None:
                return bearer_token_answer(request, token)

            webhook.middleware(require_token, "request")
        return webhook


def open_rest_channels(channels: Iterable[InputChannel]) -> list[str]:
    """Names of the REST-style channels (Rasa's `rest`, `callback`, …) anyone could post to:
    every RestInput but a TokenRestInput with its token."""
    return [
        channel.name()
        for channel in channels
        if isinstance(channel, RestInput)
        and not (isinstance(channel, TokenRestInput) and channel.token)
    ]


def refuse_open_rest_channels(channels: Iterable[InputChannel]) -> None:
    """Stops start-up when a REST channel without a token would run next to WhatsApp."""
    names = open_rest_channels(channels)
    if names:
        print_error_and_exit(
            f"REST channel '{names[0]}' next to WhatsApp: anyone could post as a customer. "
            f"Remove it from the credentials, or use connectors.rest_channel.TokenRestInput "
            f"with {TOKEN_VARIABLE} set"
        )
