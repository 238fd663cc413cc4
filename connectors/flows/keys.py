"""The Flow endpoint's RSA private key (WHATSAPP_FLOW_PRIVATE_KEY), parsed once at start-up.

A leaf: the settings read it without importing the endpoint. People paste the PEM into an
environment variable with literal \\n, or give a path to the file; it may be PKCS#1 or
PKCS#8, with or without a passphrase. Each failure names the variable to fix and never
repeats the value (it may be the key itself).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shop_contract.env_settings import ConfigError


class FlowKeyError(ConfigError):
    """The configured private key cannot be loaded; the message says what to check."""


def load_private_key(value: str, passphrase: str | None = None) -> rsa.RSAPrivateKey:
    """The RSA private key from PEM text (literal \\n tolerated) or a PEM file path."""
    text = value.strip()
    if not text:
        raise FlowKeyError("WHATSAPP_FLOW_PRIVATE_KEY: not set")
    if "-----BEGIN" not in text:
        try:
            text = Path(text).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            # The error would repeat the value, which may be (part of) the key itself.
            raise FlowKeyError(
                "WHATSAPP_FLOW_PRIVATE_KEY: neither PEM text nor a readable file path"
            ) from None
    pem = text.replace("\\n", "\n").strip().encode("utf-8")
    password = passphrase.encode("utf-8") if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        if password is None:
            raise FlowKeyError(
                "WHATSAPP_FLOW_PRIVATE_KEY: the PEM is encrypted — set "
                "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE"
            ) from None
        raise FlowKeyError(
            "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE: set, but the PEM is not encrypted"
        ) from None
    except ValueError:
        if password is not None:
            raise FlowKeyError(
                "WHATSAPP_FLOW_PRIVATE_KEY: cannot decrypt the PEM — wrong passphrase in "
                "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE?"
            ) from None
        raise FlowKeyError("WHATSAPP_FLOW_PRIVATE_KEY: not a valid PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FlowKeyError("WHATSAPP_FLOW_PRIVATE_KEY: not an RSA key")
    if key.key_size < 2048:
        raise FlowKeyError("WHATSAPP_FLOW_PRIVATE_KEY: RSA keys must be at least 2048 bits")
    return key
