"""Flow tokens: minted by the action server with each Flow, verified by the connector.

A token is the conversation id, a nonce for the order attempt and an expiry, sealed with
AES-256-GCM under a key derived from the WhatsApp app secret: the endpoint learns whose
Flow it is and that we issued it, and nobody else can read (a phone number) or forge it.
Rotation: tokens are sealed with the newest secret and opened with any configured one.
(Data API 4.0's `flow_token_signature`, Meta's JWT over the token, is checked by the
connector: `connectors.edge.signatures`.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_PREFIX = "ft1."  # noqa: S105 - a format marker, not a secret
DEFAULT_TTL_SECONDS = 72 * 60 * 60
_KEY_LABEL = b"whatsapp-shop flow-token v1"
_NONCE_BYTES = 12


def _parse_json(raw: bytes) -> Any:
    """JSON of a token part; ValueError also for nesting too deep to parse."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class FlowTokenError(ValueError):
    """The token is not ours, is damaged, or has expired (-> HTTP 427)."""


@dataclass(frozen=True)
class FlowToken:
    """What a valid token says."""

    conversation_id: str
    attempt: str
    expires_at: int


def token_keys(app_secrets: Sequence[str]) -> list[bytes]:
    """One sealing key per app secret, newest (last configured) first."""
    return [
        hmac.new(s.encode(), _KEY_LABEL, hashlib.sha256).digest() for s in reversed(app_secrets)
    ]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(
    conversation_id: str,
    app_secrets: Sequence[str],
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: float | None = None,
) -> str:
    """A new token for this conversation, valid for `ttl_seconds`."""
    claims = {
        "c": conversation_id,
        "a": secrets.token_hex(6),
        "e": int((now if now is not None else time.time()) + ttl_seconds),
    }
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(token_keys(app_secrets)[0]).encrypt(
        nonce, json.dumps(claims, separators=(",", ":")).encode(), None
    )
    return TOKEN_PREFIX + _b64encode(nonce + sealed)


def read_token(token: object, app_secrets: Sequence[str], now: float | None = None) -> FlowToken:
    """The token's claims; FlowTokenError when it is not ours, damaged or expired."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise FlowTokenError("not a flow token of this shop")
    try:
        raw = _b64decode(token[len(TOKEN_PREFIX) :])
    except (binascii.Error, ValueError):
        raise FlowTokenError("damaged flow token") from None
    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    for key in token_keys(app_secrets):
        try:
            claims = _parse_json(AESGCM(key).decrypt(nonce, sealed, None))
            break
        except (InvalidTag, ValueError):
            continue
    else:
        raise FlowTokenError("flow token not issued by this shop")
    if int(claims["e"]) < (now if now is not None else time.time()):
        raise FlowTokenError("flow token expired")
    return FlowToken(str(claims["c"]), str(claims["a"]), int(claims["e"]))


def read_token_for(
    token: object, conversation_id: str, app_secrets: Sequence[str], now: float | None = None
) -> FlowToken:
    """`read_token`, and the token must have been issued for this conversation: a Flow
    completion carries the token of whoever opened the Flow, and one customer must not
    complete (or use up) another's."""
    claims = read_token(token, app_secrets, now)
    if not hmac.compare_digest(claims.conversation_id.encode(), conversation_id.encode()):
        raise FlowTokenError("flow token issued for another conversation")
    return claims
