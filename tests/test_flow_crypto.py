"""Flow endpoint encryption: known answers, round trips, Meta's recipe, failures, key loading.

Keys are generated here, at test time; none is stored in the repository.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.flows.crypto import (
    FlowDecryptError,
    decrypt_request,
    decrypt_response,
    encrypt_request,
    encrypt_response,
    flipped,
    open_flow_data,
    seal_response,
)
from connectors.flows.keys import FlowKeyError, load_private_key
from connectors.settings import DEFAULT_FLOW_TURN_BUDGET_SECONDS, FlowSettings
from shop_contract.env_settings import ConfigError

KEY_VARIABLE = "WHATSAPP_FLOW_PRIVATE_KEY"
PASSPHRASE_VARIABLE = "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"
PAYLOAD: dict[str, Any] = {
    "version": "3.0",
    "action": "data_exchange",
    "screen": "PRODUCT",
    "data": {"product": "mug"},
    "flow_token": "ft1.example",
}


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """Our endpoint's key (RSA-2048 generation is slow: once per module)."""
    return new_rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    """Somebody else's RSA-2048 key."""
    return new_rsa_key()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def pem(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    form: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    passphrase: str | None = None,
) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(serialization.Encoding.PEM, form, encryption).decode("ascii")


# --- a request built by hand, the way Meta's reference endpoint describes it ---------------


def wrap_aes_key(public_key: rsa.RSAPublicKey, aes_key: bytes) -> bytes:
    """RSA-OAEP with SHA-256 and MGF1-SHA-256, spelled out independently of the module."""
    return public_key.encrypt(
        aes_key,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )


def gcm_encrypt(aes_key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-GCM as the WhatsApp client sends it: ciphertext followed by the 16-byte tag."""
    encryptor = Cipher(algorithms.AES(aes_key), modes.GCM(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + encryptor.tag


@dataclass(frozen=True)
class Parts:
    """A request before base64: tests damage one part and encode the rest."""

    wrapped_key: bytes
    data: bytes
    iv: bytes
    aes_key: bytes

    def body(self) -> dict[str, str]:
        return {
            "encrypted_flow_data": b64(self.data),
            "encrypted_aes_key": b64(self.wrapped_key),
            "initial_vector": b64(self.iv),
        }


def hand_made(
    public_key: rsa.RSAPublicKey,
    plaintext: bytes = b'{"action":"ping","version":"3.0"}',
    aes_key: bytes | None = None,
    iv: bytes | None = None,
) -> Parts:
    aes_key = aes_key if aes_key is not None else os.urandom(16)
    iv = iv if iv is not None else os.urandom(16)
    return Parts(
        wrap_aes_key(public_key, aes_key), gcm_encrypt(aes_key, iv, plaintext), iv, aes_key
    )


def inverted(iv: bytes) -> bytes:
    return bytes(~byte & 0xFF for byte in iv)


# --- known answers --------------------------------------------------------------------------
# Wycheproof's AES-GCM vectors (C2SP/wycheproof, testvectors_v1/aes_gcm_test.json), the group
# with a 128-bit key and a 128-bit IV, tcId 89 and 90: one key, IV 00…00 and IV ff…ff — each
# IV the other with every bit inverted, as a Flow request's and its response's are.
WYCHEPROOF_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
ZERO_IV, ONES_IV = bytes(16), b"\xff" * 16
TC89_MSG = bytes.fromhex("bec6fa05c1718b9b84c47345bbed7dcb")
TC89_SEALED = bytes.fromhex("45a3f89d02918bfd0c8161658ccc9795" + "00" * 16)  # ct, then tag
TC90_MSG = bytes.fromhex("4d82639c39d3f3490ee903dd0be7afcf")
TC90_SEALED = bytes.fromhex("1cd5a06214235ceb044d4bad7b047312" + "ff" * 16)  # ct, then tag

# A whole exchange with a fixed AES key and IV. The base64 texts were computed once with
# cryptography's low-level Cipher(AES, GCM) encryptor (ciphertext + tag), not with this module.
FLOW_AES_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
FLOW_IV = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
PING_DATA = "RXsgKMV2vzp9Rg/3Nn9QNv1AIVWqxNBHbiobq+p97njG/oEBr518kbftZkNYkqEcIg=="
# '{"data":{"status":"active"}}' under FLOW_IV inverted (5f5e5d…50).
ACTIVE_ANSWER = "FusEzBdzvQC+45OrlNKuLz5JY7ITAEKuw/x2vQfdtCN50KTnDUi/t1juMWA="


def test_request_data_opens_as_the_published_vectors_say() -> None:
    assert open_flow_data(TC89_SEALED, WYCHEPROOF_KEY, ZERO_IV) == TC89_MSG
    assert open_flow_data(TC90_SEALED, WYCHEPROOF_KEY, ONES_IV) == TC90_MSG


def test_a_response_is_sealed_under_the_inverted_iv_byte_for_byte() -> None:
    # The answer to a request sent with IV 00…00 is encrypted with IV ff…ff, tag last.
    assert seal_response(TC90_MSG, WYCHEPROOF_KEY, ZERO_IV) == TC90_SEALED
    assert seal_response(TC89_MSG, WYCHEPROOF_KEY, ONES_IV) == TC89_SEALED


def fixed_request(public_key: rsa.RSAPublicKey, wrapped_key: bytes | None = None) -> dict[str, str]:
    """The fixed ping request; its AES key is wrapped now, under a key generated now."""
    if wrapped_key is None:
        wrapped_key = wrap_aes_key(public_key, FLOW_AES_KEY)
    return {
        "encrypted_flow_data": PING_DATA,
        "encrypted_aes_key": b64(wrapped_key),
        "initial_vector": b64(FLOW_IV),
    }


def test_a_fixed_request_decrypts_to_its_known_payload_key_and_iv(key: rsa.RSAPrivateKey) -> None:
    request = decrypt_request(fixed_request(key.public_key()), key)

    assert request.payload == {"version": "3.0", "action": "ping"}
    assert request.aes_key == FLOW_AES_KEY
    assert request.iv == FLOW_IV


def test_the_answer_to_the_fixed_request_is_known_byte_for_byte() -> None:
    assert encrypt_response({"data": {"status": "active"}}, FLOW_AES_KEY, FLOW_IV) == ACTIVE_ANSWER


SHA1 = hashes.SHA1()  # noqa: S303 - a wrapping a client could get wrong, to be refused
OTHER_WRAPPINGS: dict[str, padding.AsymmetricPadding] = {
    "oaep sha-1, mgf1 sha-1": padding.OAEP(
        mgf=padding.MGF1(algorithm=SHA1), algorithm=SHA1, label=None
    ),
    "oaep sha-256, mgf1 sha-1": padding.OAEP(
        mgf=padding.MGF1(algorithm=SHA1), algorithm=hashes.SHA256(), label=None
    ),
    "oaep sha-1, mgf1 sha-256": padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=SHA1, label=None
    ),
    "pkcs1 v1.5": padding.PKCS1v15(),
}


@pytest.mark.parametrize("wrapping", OTHER_WRAPPINGS.values(), ids=OTHER_WRAPPINGS.keys())
def test_an_aes_key_wrapped_other_than_oaep_sha256_mgf1_sha256_is_refused(
    wrapping: padding.AsymmetricPadding, key: rsa.RSAPrivateKey
) -> None:
    wrapped = key.public_key().encrypt(FLOW_AES_KEY, wrapping)
    with pytest.raises(FlowDecryptError, match=r"^encrypted_aes_key:"):
        decrypt_request(fixed_request(key.public_key(), wrapped), key)


# --- round trips ----------------------------------------------------------------------------


def test_client_helpers_round_trip(key: rsa.RSAPrivateKey) -> None:
    body, aes_key, iv = encrypt_request(PAYLOAD, key.public_key())

    request = decrypt_request(body, key)
    assert request.payload == PAYLOAD
    assert (request.aes_key, request.iv) == (aes_key, iv)
    assert (len(aes_key), len(iv)) == (16, 16)

    answer = {"screen": "QUANTITY", "data": {"product": "mug", "quantities": []}}
    text = encrypt_response(answer, request.aes_key, request.iv)
    assert decrypt_response(text, aes_key, iv) == answer


def test_the_response_iv_is_the_request_iv_with_every_bit_inverted(
    key: rsa.RSAPrivateKey,
) -> None:
    assert flipped(bytes(16)) == b"\xff" * 16
    assert flipped(bytes([0b1010_0101, 0x0F])) == bytes([0b0101_1010, 0xF0])
    body, aes_key, iv = encrypt_request(PAYLOAD, key.public_key())
    request = decrypt_request(body, key)
    assert flipped(iv) == inverted(iv)
    assert flipped(flipped(iv)) == iv

    text = encrypt_response({"data": {"status": "active"}}, request.aes_key, request.iv)
    sealed = base64.b64decode(text)
    assert json.loads(AESGCM(aes_key).decrypt(inverted(iv), sealed, None)) == {
        "data": {"status": "active"}
    }
    with pytest.raises(InvalidTag):
        AESGCM(aes_key).decrypt(iv, sealed, None)
    with pytest.raises(InvalidTag):  # decrypt_response inverts what it is given: iv again
        decrypt_response(text, aes_key, flipped(iv))


def test_a_request_made_by_hand_as_meta_does_is_read(key: rsa.RSAPrivateKey) -> None:
    parts = hand_made(key.public_key(), json.dumps(PAYLOAD).encode("utf-8"))

    request = decrypt_request(parts.body(), key)

    assert request.payload == PAYLOAD
    assert request.aes_key == parts.aes_key
    answer = {"screen": "SUMMARY", "data": {"summary": "2 × Mug — €24.00"}}
    text = encrypt_response(answer, request.aes_key, request.iv)
    plain = AESGCM(parts.aes_key).decrypt(inverted(parts.iv), base64.b64decode(text), None)
    assert json.loads(plain.decode("utf-8")) == answer


# --- every way a request fails is one error ------------------------------------------------

BadBody = Callable[[rsa.RSAPublicKey, rsa.RSAPublicKey], Any]


def damaged(field: str, value: Any) -> BadBody:
    """A good request whose `field` is replaced by `value` (None removes it)."""

    def build(ours: rsa.RSAPublicKey, _: rsa.RSAPublicKey) -> dict[str, Any]:
        body: dict[str, Any] = hand_made(ours).body()
        if value is None:
            del body[field]
        else:
            body[field] = value
        return body

    return build


def from_parts(change: Callable[[Parts], Parts]) -> BadBody:
    return lambda ours, _: change(hand_made(ours)).body()


def cut_text(ours: rsa.RSAPublicKey, _: rsa.RSAPublicKey) -> dict[str, str]:
    body = hand_made(ours).body()
    body["encrypted_flow_data"] = body["encrypted_flow_data"][:-8]  # still valid base64
    return body


BAD_BODIES: dict[str, BadBody] = {
    "body is a list": lambda ours, _: [hand_made(ours).body()],
    "body is a string": lambda ours, _: json.dumps(hand_made(ours).body()),
    "no encrypted_flow_data": damaged("encrypted_flow_data", None),
    "no encrypted_aes_key": damaged("encrypted_aes_key", None),
    "no initial_vector": damaged("initial_vector", None),
    "initial_vector not a string": damaged("initial_vector", 12345),
    "bad base64 in encrypted_flow_data": damaged("encrypted_flow_data", "not base64!"),
    "bad base64 in encrypted_aes_key": damaged("encrypted_aes_key", "not base64!"),
    "bad base64 in initial_vector": damaged("initial_vector", "not base64!"),
    "iv of 12 bytes": lambda ours, _: hand_made(ours, iv=os.urandom(12)).body(),
    "data shorter than the tag": from_parts(lambda p: replace(p, data=p.data[:10])),
    "data of the tag alone": from_parts(lambda p: replace(p, data=p.data[-16:])),
    "truncated data": from_parts(lambda p: replace(p, data=p.data[:-5])),
    "truncated base64 text": cut_text,
    "flipped bit in the tag": from_parts(
        lambda p: replace(p, data=p.data[:-1] + bytes([p.data[-1] ^ 0x01]))
    ),
    "flipped bit in the ciphertext": from_parts(
        lambda p: replace(p, data=bytes([p.data[0] ^ 0x80]) + p.data[1:])
    ),
    "aes key for another rsa key": lambda _, other: hand_made(other).body(),
    "empty aes key": from_parts(lambda p: replace(p, wrapped_key=b"")),
    "aes-256 key": lambda ours, _: hand_made(ours, aes_key=os.urandom(32)).body(),
    "plaintext not json": lambda ours, _: hand_made(ours, b"action=ping").body(),
    "plaintext not utf-8": lambda ours, _: hand_made(ours, b"\xff\xfe{}").body(),
    "plaintext a json list": lambda ours, _: hand_made(ours, b'[{"action":"ping"}]').body(),
    "plaintext a json string": lambda ours, _: hand_made(ours, b'"ping"').body(),
}


@pytest.mark.parametrize("build", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_every_undecryptable_request_is_a_flow_decrypt_error(
    build: BadBody, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    body = build(key.public_key(), other_key.public_key())
    with pytest.raises(FlowDecryptError):
        decrypt_request(body, key)


# --- loading the private key ---------------------------------------------------------------


def assert_decrypts_for(loaded: rsa.RSAPrivateKey, key: rsa.RSAPrivateKey) -> None:
    body, _, _ = encrypt_request(PAYLOAD, key.public_key())
    assert decrypt_request(body, loaded).payload == PAYLOAD


KeyText = Callable[[rsa.RSAPrivateKey, Path], tuple[str, str | None]]


def key_file(key: rsa.RSAPrivateKey, folder: Path) -> tuple[str, str | None]:
    path = folder / "flow-private.pem"
    path.write_text(pem(key), encoding="utf-8")
    return str(path), None


GOOD_KEYS: dict[str, KeyText] = {
    "pkcs1": lambda k, _: (pem(k, serialization.PrivateFormat.TraditionalOpenSSL), None),
    "pkcs8": lambda k, _: (pem(k), None),
    "pkcs8 with passphrase": lambda k, _: (pem(k, passphrase=PASSPHRASE), PASSPHRASE),
    "literal backslash-n": lambda k, _: (pem(k).replace("\n", "\\n"), None),
    "literal backslash-n with passphrase": lambda k, _: (
        pem(k, passphrase=PASSPHRASE).replace("\n", "\\n"),
        PASSPHRASE,
    ),
    "surrounding whitespace": lambda k, _: ("\n  " + pem(k) + "\n\n", None),
    "path to a pem file": key_file,
}


@pytest.mark.parametrize("text", GOOD_KEYS.values(), ids=GOOD_KEYS.keys())
def test_the_private_key_loads_in_every_accepted_form(
    text: KeyText, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    value, passphrase = text(key, tmp_path)
    assert_decrypts_for(load_private_key(value, passphrase), key)


KEY_ERRORS: dict[str, tuple[KeyText, str, str]] = {
    "encrypted pem without passphrase": (
        lambda k, _: (pem(k, passphrase=PASSPHRASE), None),
        KEY_VARIABLE,
        PASSPHRASE_VARIABLE,
    ),
    "wrong passphrase": (
        lambda k, _: (pem(k, passphrase=PASSPHRASE), "wrong passphrase"),
        KEY_VARIABLE,
        PASSPHRASE_VARIABLE,
    ),
    "passphrase for an unencrypted pem": (
        lambda k, _: (pem(k), PASSPHRASE),
        PASSPHRASE_VARIABLE,
        "not encrypted",
    ),
    "empty": (lambda *_: ("  ", None), KEY_VARIABLE, "not set"),
    "garbage text": (lambda *_: ("my flow private key", None), KEY_VARIABLE, "file path"),
    "damaged pem": (
        lambda k, _: (pem(k).replace("M", "*", 3), None),
        KEY_VARIABLE,
        "not a valid PEM",
    ),
    "missing file": (
        lambda _, folder: (str(folder / "missing.pem"), None),
        KEY_VARIABLE,
        "file path",
    ),
    "ec key": (
        lambda *_: (pem(ec.generate_private_key(ec.SECP256R1())), None),
        KEY_VARIABLE,
        "not an RSA key",
    ),
    "rsa-1024 key": (lambda *_: (pem(new_rsa_key(1024)), None), KEY_VARIABLE, "2048"),
}


@pytest.mark.parametrize(("text", "leads", "mentions"), KEY_ERRORS.values(), ids=KEY_ERRORS.keys())
def test_an_unusable_private_key_is_a_key_error_naming_the_variable(
    text: KeyText, leads: str, mentions: str, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    value, passphrase = text(key, tmp_path)
    with pytest.raises(FlowKeyError) as raised:
        load_private_key(value, passphrase)
    message = str(raised.value)
    assert message.split(":", 1)[0] == leads
    assert mentions in message
    assert "BEGIN" not in message
    assert PASSPHRASE not in message


def test_a_long_value_that_is_neither_pem_nor_a_path_is_a_key_error() -> None:
    # Regression: a long non-PEM value used to escape as OSError ("File name too long"),
    # repeating the value — possibly the key itself — in the start-up traceback.
    value = "x" * 300
    with pytest.raises(FlowKeyError, match=f"^{KEY_VARIABLE}:"):
        load_private_key(value)


# --- FlowSettings.from_env ----------------------------------------------------------------


def test_flow_settings_without_a_key_have_none_and_the_default_budget() -> None:
    settings = FlowSettings.from_env({})
    assert settings.private_key is None
    assert settings.turn_budget_seconds == DEFAULT_FLOW_TURN_BUDGET_SECONDS == 3.0


def test_flow_settings_load_the_key_once_with_its_passphrase(key: rsa.RSAPrivateKey) -> None:
    settings = FlowSettings.from_env(
        {
            KEY_VARIABLE: pem(key, passphrase=PASSPHRASE).replace("\n", "\\n"),
            PASSPHRASE_VARIABLE: PASSPHRASE,
            "FLOW_TURN_BUDGET_SECONDS": "0.5",
        }
    )
    assert settings.private_key is not None
    assert settings.private_key.private_numbers() == key.private_numbers()
    assert settings.turn_budget_seconds == 0.5


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({KEY_VARIABLE: "not a key"}, KEY_VARIABLE),
        ({"FLOW_TURN_BUDGET_SECONDS": "0.05"}, "FLOW_TURN_BUDGET_SECONDS"),
        ({"FLOW_TURN_BUDGET_SECONDS": "9"}, "FLOW_TURN_BUDGET_SECONDS"),
        ({"FLOW_TURN_BUDGET_SECONDS": "abc"}, "FLOW_TURN_BUDGET_SECONDS"),
    ],
    ids=["bad key", "budget too small", "budget too large", "budget not a number"],
)
def test_bad_flow_settings_are_a_config_error_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        FlowSettings.from_env(environ)


def test_a_wrong_passphrase_in_the_environment_is_a_config_error(key: rsa.RSAPrivateKey) -> None:
    environ = {KEY_VARIABLE: pem(key, passphrase=PASSPHRASE), PASSPHRASE_VARIABLE: "nope"}
    with pytest.raises(ConfigError, match=PASSPHRASE_VARIABLE):
        FlowSettings.from_env(environ)
