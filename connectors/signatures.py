"""Webhook signatures: Meta's X-Hub-Signature-256.

Verified over the raw request bytes, before anything is parsed; several secrets are accepted
so an app secret can be rotated without dropping traffic; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

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


def split_secrets(raw: str) -> tuple[str, ...]:
    """'old,new' -> ('old', 'new'); blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())
