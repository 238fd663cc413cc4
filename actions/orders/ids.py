"""Order ids: short enough to read out, unguessable, and one per WhatsApp Flow."""

from __future__ import annotations

import hashlib
import secrets

_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud without doubt


def new_order_id(flow_token: str | None = None) -> str:
    """A short id customers can read out: ORD-XXXXXXXX. Random (unguessable), or, for an
    order from a WhatsApp Flow, derived from its token (itself unguessable): a completion
    run again after a failed turn makes the same order id, hence the same Checkout Session
    (actions.payments.checkout_links.idempotency_key), never a second live link."""
    if not flow_token:
        return "ORD-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    digest = int.from_bytes(hashlib.sha256(flow_token.encode()).digest()[:5], "big")
    return "ORD-" + "".join(_ID_ALPHABET[(digest >> (5 * i)) & 31] for i in range(8))
