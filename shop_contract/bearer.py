"""The shared bearer-token check of the REST channel and the action server.

Both answer only callers that send `Authorization: Bearer <token>`; this is the one place
that reads the header and compares in constant time, so the two cannot drift apart.
"""

from __future__ import annotations

import hmac

BEARER = "Bearer "


def bearer_refusal(authorization: str | None, token: str) -> tuple[int, str] | None:
    """None when `authorization` carries `token`; else (401, why) without a bearer token,
    (403, why) with a wrong one."""
    header = authorization or ""
    if not header.startswith(BEARER):
        return 401, "missing bearer token"
    given = header[len(BEARER) :].strip().encode("utf-8", errors="replace")
    if not hmac.compare_digest(given, token.encode("utf-8")):
        return 403, "wrong token"
    return None
