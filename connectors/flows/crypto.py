"""WhatsApp Flows data-endpoint encryption, exactly as the WhatsApp client does it.

Request: the AES key is RSA-OAEP encrypted (SHA-256, MGF1-SHA-256) to our RSA-2048 public
key; the payload is AES-128-GCM with a 16-byte IV, the tag in its last 16 bytes, no AAD.
Response: JSON encrypted with the same AES key and the IV with every bit inverted, tag
appended, base64. Any failure to decrypt is one error type (-> HTTP 421).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.edge.json_body import parse_json

IV_BYTES = 16
TAG_BYTES = 16
AES_KEY_BYTES = 16
OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


class FlowDecryptError(ValueError):
    """The request cannot be decrypted (bad base64, wrong key, truncated, bad tag, not JSON)."""


@dataclass(frozen=True)
class DecryptedRequest:
    """A decrypted Flow request and what is needed to encrypt its answer."""

    payload: dict[str, Any]
    aes_key: bytes
    iv: bytes


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise FlowDecryptError(f"{field}: missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FlowDecryptError(f"{field}: not base64") from None


def decrypt_request(body: Any, private_key: rsa.RSAPrivateKey) -> DecryptedRequest:
    """Decrypts a Flow endpoint request body (already parsed JSON)."""
    if not isinstance(body, dict):
        raise FlowDecryptError("body: not a JSON object")
    encrypted_key = _b64(body.get("encrypted_aes_key"), "encrypted_aes_key")
    data = _b64(body.get("encrypted_flow_data"), "encrypted_flow_data")
    iv = _b64(body.get("initial_vector"), "initial_vector")
    if len(iv) != IV_BYTES:
        raise FlowDecryptError("initial_vector: not 16 bytes")
    if len(data) <= TAG_BYTES:
        raise FlowDecryptError("encrypted_flow_data: too short")
    try:
        aes_key = private_key.decrypt(encrypted_key, OAEP)
    except ValueError:
        raise FlowDecryptError("encrypted_aes_key: cannot be decrypted with our key") from None
    if len(aes_key) != AES_KEY_BYTES:
        raise FlowDecryptError("encrypted_aes_key: not an AES-128 key")
    plain = open_flow_data(data, aes_key, iv)
    try:
        payload = parse_json(plain)
    except (UnicodeDecodeError, ValueError):
        raise FlowDecryptError("encrypted_flow_data: not JSON") from None
    if not isinstance(payload, dict):
        raise FlowDecryptError("encrypted_flow_data: not a JSON object")
    return DecryptedRequest(payload, aes_key, iv)


def open_flow_data(data: bytes, aes_key: bytes, iv: bytes) -> bytes:
    """The plaintext of `encrypted_flow_data`: AES-GCM under the 16-byte IV, tag last, no AAD."""
    try:
        return AESGCM(aes_key).decrypt(iv, data, None)
    except InvalidTag:
        raise FlowDecryptError("encrypted_flow_data: authentication tag mismatch") from None


def seal_response(plain: bytes, aes_key: bytes, iv: bytes) -> bytes:
    """`plain` encrypted as the answer to a request with `iv`: inverted IV, tag appended."""
    return AESGCM(aes_key).encrypt(flipped(iv), plain, None)


def flipped(iv: bytes) -> bytes:
    """The IV with every bit inverted (the response's IV)."""
    return bytes(byte ^ 0xFF for byte in iv)


def encrypt_response(response: dict[str, Any], aes_key: bytes, iv: bytes) -> str:
    """The base64 body that answers a request decrypted with `aes_key` and `iv`."""
    plain = json.dumps(response, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(seal_response(plain, aes_key, iv)).decode("ascii")


# --- the client side: what the WhatsApp app does (tests, the CLI's flow-request) -----------


def encrypt_request(
    payload: dict[str, Any], public_key: rsa.RSAPublicKey
) -> tuple[dict[str, str], bytes, bytes]:
    """A request body as WhatsApp sends it, plus the AES key and IV to read the answer."""
    aes_key = os.urandom(AES_KEY_BYTES)
    iv = os.urandom(IV_BYTES)
    data = AESGCM(aes_key).encrypt(iv, json.dumps(payload).encode("utf-8"), None)
    body = {
        "encrypted_flow_data": base64.b64encode(data).decode("ascii"),
        "encrypted_aes_key": base64.b64encode(public_key.encrypt(aes_key, OAEP)).decode("ascii"),
        "initial_vector": base64.b64encode(iv).decode("ascii"),
    }
    return body, aes_key, iv


def decrypt_response(text: str, aes_key: bytes, iv: bytes) -> dict[str, Any]:
    """Reads an endpoint's answer as the WhatsApp client does."""
    plain = AESGCM(aes_key).decrypt(flipped(iv), base64.b64decode(text), None)
    decoded: dict[str, Any] = json.loads(plain)
    return decoded
