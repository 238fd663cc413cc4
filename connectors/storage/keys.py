"""The key ring for data at rest: AES-256-GCM sealing and keyed-hash pseudonyms.

TRACKER_ENCRYPTION_KEY holds one or more keys, each with an id, newest first:

    TRACKER_ENCRYPTION_KEY="k2:<base64 of 32 random bytes>,k1:<base64 …>"

New writes use the first key; data written under any key on the ring stays readable, so a
key is rotated by putting the new one in front, running the re-encryption CLI, and then
dropping the old one. Every stored value names the key it was made with:

- sealed values: ``e.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`` (tracker events, and
  the connector's columns before they were bound to their row), or ``r.<key id>.<…>`` for
  the connector's columns, whose associated data names the row (connectors/storage/sealing.py);
- pseudonyms (conversation keys, customer columns): ``h.<key id>.<base64url(HMAC-SHA256)>``.

A pseudonym is a keyed hash, so nobody without the key can turn it back into a phone
number by hashing every number there is; because it depends on the key, a lookup tries the
pseudonym under every key on the ring.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shop_contract.env_settings import ConfigError

ENV_VAR = "TRACKER_ENCRYPTION_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SEALED_PREFIX = "e."
ROW_SEALED_PREFIX = "r."
PSEUDONYM_PREFIX = "h."
# Lower case only: SQLite's LIKE ignores case, and prefixes are matched with LIKE.
_KEY_ID = re.compile(r"[a-z0-9-]{1,16}")
_ENCODED = re.compile(r"[A-Za-z0-9_-]+")


class KeyConfigError(ConfigError):
    """TRACKER_ENCRYPTION_KEY is missing or malformed; the message says how to fix it."""


class UnreadableError(ValueError):
    """A stored value cannot be opened: unknown key id, wrong key, or not sealed at all."""


@dataclass(frozen=True)
class _Key:
    key_id: str
    secret: bytes

    @cached_property
    def aead(self) -> AESGCM:
        return AESGCM(hmac.digest(self.secret, b"at-rest/aes-256-gcm", hashlib.sha256))

    @cached_property
    def hash_key(self) -> bytes:
        return hmac.digest(self.secret, b"at-rest/pseudonym", hashlib.sha256)


class KeyRing:
    """Seals, opens and pseudonymises with the configured keys (the first one is current)."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyConfigError(f"{ENV_VAR}: no key given")
        self._keys = [_Key(key_id, secret) for key_id, secret in keys]
        self._by_id = {key.key_id: key for key in self._keys}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        return cls.parse((os.environ if environ is None else environ).get(ENV_VAR, ""))

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Reads 'id:base64,id:base64' (newest first); refuses anything weaker than 32 bytes."""
        if not text.strip():
            raise KeyConfigError(
                f"{ENV_VAR} is not set: conversations are encrypted at rest and need a key. "
                f"Create one with `make privacy ARGS=keygen` and put the line it prints in .env"
            )
        keys: list[tuple[str, bytes]] = []
        for entry in text.split(","):
            key_id, colon, material = entry.strip().partition(":")
            if not colon or not _KEY_ID.fullmatch(key_id):
                raise KeyConfigError(
                    f"{ENV_VAR}: each key must look like '<id>:<base64>' with an id of 1-16 "
                    f"lower-case letters, digits or '-', e.g. 'k1:…' (newest first, "
                    f"comma-separated)"
                )
            text_key = material.strip().replace("-", "+").replace("_", "/").rstrip("=")
            try:
                secret = base64.b64decode(text_key + "=" * (-len(text_key) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError(f"{ENV_VAR}: key '{key_id}' is not valid base64") from None
            if len(secret) != KEY_BYTES:
                # Longer is refused too: a hex or passphrase key read as base64 would be
                # cut to size silently, and then be weaker than it looks.
                raise KeyConfigError(
                    f"{ENV_VAR}: key '{key_id}' is {len(secret)} bytes; it must be {KEY_BYTES} "
                    f"random bytes in base64 (`make privacy ARGS=keygen` makes one)"
                )
            if any(known == key_id for known, _ in keys):
                raise KeyConfigError(f"{ENV_VAR}: key id '{key_id}' appears twice")
            keys.append((key_id, secret))
        return cls(keys)

    @property
    def current_id(self) -> str:
        return self._keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        return [key.key_id for key in self._keys]

    def seal(self, plaintext: str, context: bytes, prefix: str = SEALED_PREFIX) -> str:
        """Encrypts under the current key; `context` (e.g. the column and row) is
        authenticated too, so a value copied into another place does not open. `prefix`
        names the form, so that a reader can tell which context the value was made with."""
        key = self._keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), context)
        encoded = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{prefix}{key.key_id}.{encoded}"

    def open(self, value: str, context: bytes, prefix: str = SEALED_PREFIX) -> str:
        """Opens a value sealed in the form `prefix` with this `context`; UnreadableError
        for any other form, key or context."""
        key_id, encoded = _split(value, prefix)
        key = self._by_id.get(key_id)
        if key is None:
            raise UnreadableError(
                f"sealed under key '{key_id}', which {ENV_VAR} does not hold (has: "
                f"{', '.join(self.key_ids)})"
            )
        if not _ENCODED.fullmatch(encoded) or len(encoded) % 4 == 1:
            raise UnreadableError("not an encrypted value: its text is not base64url")
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise UnreadableError("not an encrypted value: too short")
        try:
            return key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context).decode()
        except InvalidTag:
            raise UnreadableError(
                f"key '{key_id}' in {ENV_VAR} does not open this value: wrong key for this "
                f"database, or the value was altered or moved from another row or column"
            ) from None

    def pseudonym(self, customer_id: str) -> str:
        """The customer's stored key under the current key."""
        return _pseudonym(self._keys[0], customer_id)

    def pseudonyms(self, customer_id: str) -> list[str]:
        """The customer's stored key under every key on the ring, current first."""
        return [_pseudonym(key, customer_id) for key in self._keys]

    def prefixes(self, kind: str) -> list[str]:
        """Every prefix a readable value of `kind` (SEALED_PREFIX or PSEUDONYM_PREFIX) has."""
        return [f"{kind}{key_id}." for key_id in self.key_ids]


def _pseudonym(key: _Key, customer_id: str) -> str:
    digest = hmac.digest(key.hash_key, customer_id.encode(), hashlib.sha256)
    return f"{PSEUDONYM_PREFIX}{key.key_id}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def _split(value: str, prefix: str) -> tuple[str, str]:
    if not value.startswith(prefix) or value.count(".") < 2:
        raise UnreadableError("not an encrypted value (stored before encryption was enabled?)")
    key_id, _, encoded = value[len(prefix) :].partition(".")
    return key_id, encoded


def new_key_line(key_id: str = "k1") -> str:
    """A fresh key entry for TRACKER_ENCRYPTION_KEY, e.g. for `keygen`."""
    if not _KEY_ID.fullmatch(key_id):
        raise KeyConfigError("key ids are 1-16 lower-case letters, digits or '-'")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
