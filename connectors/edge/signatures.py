"""Signatures: Meta's X-Hub-Signature-256 and flow_token_signature, Stripe's header, and
the same scheme as Stripe's on the hand-over webhook we send to the shop.

Headers are verified over the raw request bytes, before anything is parsed; the Flow's JWT
(inside the decrypted request) with PyJWT. Several secrets are accepted so an app secret can
be rotated without dropping traffic; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import jwt

HUB_SIGNATURE_PREFIX = "sha256="


def hub_signature(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body` signed with `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return HUB_SIGNATURE_PREFIX + digest


def verify_hub_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when `header` is a valid signature of `body` under any of `secrets`."""
    if not header or not header.startswith(HUB_SIGNATURE_PREFIX) or not secrets:
        return False
    received = header.strip().encode("ascii", errors="replace")
    matched = False
    for secret in secrets:
        # Check every secret so the time taken does not tell which one matched.
        matched |= hmac.compare_digest(hub_signature(body, secret).encode("ascii"), received)
    return matched


# Meta's clock and ours may differ a little: a signature issued "in the future" (iat, nbf) or
# just expired by that much is still Meta's.
FLOW_TOKEN_SIGNATURE_LEEWAY_SECONDS = 30


def _flow_token_signature_claims(signature: str, secret: str) -> dict[str, Any] | None:
    """The JWT's claims when it is HS256-signed with `secret` and in date, else None."""
    try:
        return jwt.decode(
            signature,
            secret,
            algorithms=["HS256"],
            leeway=FLOW_TOKEN_SIGNATURE_LEEWAY_SECONDS,
            # Meta documents no audience; an `aud` claim is not a reason to refuse.
            options={"verify_aud": False},
        )
    except jwt.PyJWTError:
        return None


def verify_flow_token_signature(signature: str, flow_token: str, secrets: Sequence[str]) -> bool:
    """True when Data API 4.0's `flow_token_signature` is a JWT signed (HS256) with any of
    the app `secrets`, in date, and naming `flow_token` when it names a flow token."""
    if not signature.isascii():  # PyJWT would raise UnicodeEncodeError on a lone surrogate
        return False
    # Decode with every secret so the time taken does not tell which one matched.
    decoded = [_flow_token_signature_claims(signature, secret) for secret in secrets]
    found = [claims for claims in decoded if claims is not None]
    if not found:
        return False
    named = found[0].get("flow_token", flow_token)
    return isinstance(named, str) and hmac.compare_digest(
        named.encode("utf-8", "surrogatepass"), flow_token.encode("utf-8", "surrogatepass")
    )


STRIPE_TOLERANCE_SECONDS = 300


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe sends for `body` at `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def timestamped_signature(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """Stripe's scheme, for a webhook we send: `t=<unix time>,v1=<hex>`, one v1 per secret
    (two while a secret is rotated), each the HMAC-SHA256 of "<t>.<raw body>";
    `verify_stripe_signature` checks it."""
    digests = [stripe_signature(body, secret, timestamp).rsplit("=", 1)[1] for secret in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={digest}" for digest in digests)])


def verify_stripe_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: float,
    tolerance: int = STRIPE_TOLERANCE_SECONDS,
) -> bool:
    """True when `header` signs `body` (raw bytes) with any secret, within the tolerance.

    The header is `t=<unix time>,v1=<hex>[,v1=<hex>…]`; Stripe may send several v1 values
    (its own secret rotation) and we may hold several secrets (ours).
    """
    if not header or not secrets:
        return False
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():  # not '²', which int() refuses
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.encode("ascii", errors="replace"))
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    matched = False
    for secret in secrets:
        expected = stripe_signature(body, secret, timestamp).rsplit("=", 1)[1].encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    return matched
