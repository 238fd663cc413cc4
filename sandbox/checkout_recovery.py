"""Abandoned-checkout recovery, as Stripe does it: a session created with
`after_expiration.recovery.enabled` gets, when it expires, a recovery URL valid for 30 days;
opening it starts a new session that copies the expired one (line items, metadata, delivery)
and names it in `recovered_from`.

Pure functions over stored sessions; the emulator serves the URL (`/recover/<id>`) and
sandbox/stripe_api/recovery.py checks the request's `after_expiration`.
"""

from __future__ import annotations

import secrets
from typing import Any

RECOVERY_URL_SECONDS = 30 * 24 * 60 * 60  # Stripe: the recovery URL is usable for 30 days
COPY_LIFETIME_SECONDS = 24 * 60 * 60  # Stripe's default expires_at


def recovery_url_of(session: dict[str, Any]) -> str:
    """The URL that recovers `session`: next to its hosted page, as unguessable as its id."""
    return str(session["url"]).replace("/pay/", "/recover/")


def on_expiry(session: dict[str, Any], now: int) -> None:
    """Gives an expiring session with recovery enabled its recovery URL and its end."""
    recovery = (session.get("after_expiration") or {}).get("recovery")
    if recovery and recovery["enabled"]:
        recovery["url"] = recovery_url_of(session)
        recovery["expires_at"] = now + RECOVERY_URL_SECONDS


def recoverable(session: dict[str, Any], now: int) -> bool:
    """Whether the session's recovery URL opens a copy now."""
    recovery = (session.get("after_expiration") or {}).get("recovery") or {}
    return (
        session["status"] == "expired"
        and bool(recovery.get("url"))
        and now < int(recovery.get("expires_at") or 0)
    )


def recovered_copy(
    original: dict[str, Any], page_url: str, session_id: str, now: int
) -> dict[str, Any]:
    """A new open session copying the expired `original` (Stripe's default 24 hours to pay,
    promotion codes as its recovery allowed)."""
    recovery = original["after_expiration"]["recovery"]
    return {
        **original,
        "id": session_id,
        "url": page_url,
        "status": "open",
        "payment_status": "unpaid",
        "created": now,
        "expires_at": now + COPY_LIFETIME_SECONDS,
        "payment_intent": None,
        "subscription": None,
        "recovered_from": original["id"],
        "allow_promotion_codes": recovery["allow_promotion_codes"],
        "after_expiration": None,
        "metadata": dict(original.get("metadata") or {}),
    }


def new_session_id() -> str:
    return "cs_test_" + secrets.token_hex(24)
