"""A WhatsApp Flow as the WhatsApp client runs it: screens built from the Flow JSON, form
values turned into the footer's payload, and each `data_exchange` sent to our Flow endpoint
encrypted (connectors/flows/crypto.py's client half: RSA-OAEP-SHA256 wrapped AES-128-GCM key,
16-byte IV, answer under the inverted IV) and signed with X-Hub-Signature-256.

When the Flow closes, the client posts the completion to the messages webhook as an
`nfm_reply`; `FlowRun.submit` returns those params and the caller sends them.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.edge.signatures import hub_signature
from connectors.flows.crypto import decrypt_response, encrypt_request

DATA_API_VERSION = "3.0"
_REFERENCE = re.compile(r"\$\{(form|data)\.(\w+)\}")
TEXT_COMPONENTS = ("TextHeading", "TextSubheading", "TextBody", "TextCaption")
CHOICE_COMPONENTS = ("RadioButtonsGroup", "Dropdown", "CheckboxGroup")
SUCCESS_SCREEN = "SUCCESS"
TIMEOUT_SECONDS = 10.0  # WhatsApp gives the endpoint 10 s


class FlowClientError(Exception):
    """What the WhatsApp client would show instead of the next screen."""


@dataclass
class FlowRun:
    """One open Flow of one customer."""

    flow: dict[str, Any]
    token: str
    screen: str
    data: dict[str, Any]
    endpoint: str
    public_key: rsa.RSAPublicKey
    app_secret: str
    closed: bool = False

    def screen_json(self) -> dict[str, Any]:
        for screen in self.flow["screens"]:
            if screen["id"] == self.screen:
                found: dict[str, Any] = screen
                return found
        raise FlowClientError(f"the endpoint sent screen {self.screen}, which the Flow lacks")

    def render(self) -> dict[str, Any]:
        """The current screen with every ${data.…} resolved: what the page draws."""
        screen = self.screen_json()
        components: list[dict[str, Any]] = []
        for child in screen["layout"]["children"]:
            kind = child["type"]
            if kind in TEXT_COMPONENTS:
                components.append(
                    {"type": "text", "style": kind, "text": self._text(child["text"])}
                )
            elif kind in CHOICE_COMPONENTS:
                components.append(
                    {
                        "type": "choice",
                        "style": kind,
                        "name": child["name"],
                        "label": self._text(child.get("label", "")),
                        "required": bool(child.get("required")),
                        "options": self._value(child.get("data-source", [])),
                    }
                )
            elif kind in ("TextInput", "TextArea"):
                components.append(
                    {
                        "type": "input",
                        "name": child["name"],
                        "label": self._text(child.get("label", "")),
                        "required": bool(child.get("required")),
                    }
                )
            elif kind == "Footer":
                components.append({"type": "footer", "label": self._text(child["label"])})
        return {
            "screen": self.screen,
            "title": screen.get("title", ""),
            "components": components,
            "error_message": self.data.get("error_message"),
            "closed": self.closed,
        }

    def _value(self, value: Any, form: dict[str, str] | None = None) -> Any:
        """A ${form.x} / ${data.x} reference resolved; other values as they are."""
        if not isinstance(value, str):
            return value
        whole = _REFERENCE.fullmatch(value)
        if whole:
            source = form if whole[1] == "form" else self.data
            return (source or {}).get(whole[2], "")
        return self._text(value, form)

    def _text(self, text: str, form: dict[str, str] | None = None) -> str:
        def replace(match: re.Match[str]) -> str:
            source = form if match[1] == "form" else self.data
            return str((source or {}).get(match[2], ""))

        return _REFERENCE.sub(replace, text)

    def _footer_action(self) -> dict[str, Any]:
        for child in self.screen_json()["layout"]["children"]:
            if child["type"] == "Footer":
                action: dict[str, Any] = child["on-click-action"]
                return action
        raise FlowClientError(f"screen {self.screen} has no footer")

    def missing_fields(self, form: dict[str, str]) -> list[str]:
        """The required fields the customer left empty (the client does not send those)."""
        return [
            c["label"] or c["name"]
            for c in self.render()["components"]
            if c["type"] in ("choice", "input") and c["required"] and not form.get(c["name"])
        ]

    async def submit(self, form: dict[str, str]) -> dict[str, Any] | None:
        """The customer tapped the footer. Moves to the next screen and returns None, or
        closes the Flow and returns the completion params for the nfm_reply."""
        if self.closed:
            raise FlowClientError("this Flow is closed")
        missing = self.missing_fields(form)
        if missing:
            raise FlowClientError("Please fill in: " + ", ".join(missing))
        action = self._footer_action()
        payload = {k: self._value(v, form) for k, v in action.get("payload", {}).items()}
        if action["name"] == "complete":
            self.closed = True
            return {"flow_token": self.token, **payload}
        if action["name"] != "data_exchange":
            raise FlowClientError(f"footer action {action['name']} is not supported here")
        answer = await self.exchange("data_exchange", payload)
        if answer.get("screen") == SUCCESS_SCREEN:
            self.closed = True
            params = answer.get("data", {}).get("extension_message_response", {}).get("params")
            return dict(params) if isinstance(params, dict) else {"flow_token": self.token}
        next_screen, data = str(answer.get("screen")), dict(answer.get("data") or {})
        self.check_route(next_screen)
        self.screen, self.data = next_screen, data
        self.check_data()
        return None

    def check_route(self, next_screen: str) -> None:
        """The client only follows the Flow's routing model (or stays, e.g. with an error)."""
        allowed = self.flow.get("routing_model", {}).get(self.screen)
        if allowed is not None and next_screen != self.screen and next_screen not in allowed:
            raise FlowClientError(
                f"the endpoint sent screen {next_screen}; the Flow routes {self.screen} only "
                f"to {', '.join(allowed) or 'nothing'}"
            )

    def check_data(self) -> None:
        """The answer gives every field the screen declares and nothing else (but the
        snackbar's `error_message`), or the client cannot draw the screen."""
        declared = set(self.screen_json().get("data", {}))
        given = set(self.data) - {"error_message"}
        if declared != given:
            raise FlowClientError(
                f"screen {self.screen}: the endpoint's data does not match the declared "
                f"fields (missing: {sorted(declared - given)}, unknown: {sorted(given - declared)})"
            )

    async def exchange(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """One encrypted request to the Flow endpoint, as WhatsApp sends it."""
        request: dict[str, Any] = {
            "version": DATA_API_VERSION,
            "action": action,
            "flow_token": self.token,
        }
        if action != "INIT":
            request.update({"screen": self.screen, "data": data})
        body, aes_key, iv = encrypt_request(request, self.public_key)
        raw = json.dumps(body).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": hub_signature(raw, self.app_secret),
        }
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.endpoint, data=raw, headers=headers) as response,
            ):
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise FlowClientError(
                f"the Flow endpoint did not answer: {type(error).__name__}"
            ) from None
        if status == 427:
            self.closed = True
            raise FlowClientError("This form is no longer available (flow token refused, 427).")
        if status != 200:
            raise FlowClientError(f"Something went wrong (the Flow endpoint answered {status}).")
        try:
            return decrypt_response(text, aes_key, iv)
        except (ValueError, InvalidTag):
            raise FlowClientError("the Flow endpoint's answer could not be decrypted") from None
