"""Which web addresses the bot sends a customer as a link button.

Stripe's hosted pages (Checkout, a recovery URL) are always https. The sandbox's Stripe
emulator serves them over plain http on the loopback host, the one exception: a link to
anything else over http would send the customer's payment over an unencrypted connection.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_customer_link(url: object) -> bool:
    """True for an https address with a host, or an http one on the loopback host."""
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)
