"""How logs name a customer: a keyed hash, never the phone number or user id itself.

The key is derived from the app secret, so the same customer has the same reference in
every line and every replica (logs can be correlated), while nobody without the secret can
turn a reference back into a number by trying them all.
"""

from __future__ import annotations

import hashlib
import hmac

_key = b"not-configured"


def configure(secret: str) -> None:
    """Sets the key once at start-up (the connector does, from WHATSAPP_APP_SECRET)."""
    global _key
    _key = hmac.new(secret.encode(), b"whatsapp-shop log reference", hashlib.sha256).digest()


def customer_ref(customer_id: str) -> str:
    """A short stable reference such as 'c-3f9a1b2c4d5e'."""
    digest = hmac.new(_key, customer_id.encode(), hashlib.sha256).hexdigest()
    return "c-" + digest[:12]


def message_ref(message_id: str) -> str:
    """A WhatsApp message id as logs show it: its id is base64 holding the customer's number,
    so logs carry a short digest instead, e.g. 'm-9c1f0e2a7b3d'."""
    return "m-" + hashlib.sha256(message_id.encode()).hexdigest()[:12]
