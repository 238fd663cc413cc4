"""Flow tokens: sealed, private, unforgeable, expiring, rotatable; and Meta's token JWT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from connectors.edge.signatures import (
    FLOW_TOKEN_SIGNATURE_LEEWAY_SECONDS,
    verify_flow_token_signature,
)
from shop_contract.flow_tokens import (
    DEFAULT_TTL_SECONDS,
    TOKEN_PREFIX,
    FlowTokenError,
    issue_token,
    read_token,
    read_token_for,
)

CONVERSATION = "15550001111"
SECRETS = ("app-secret-1",)
NOW = 1_750_000_000.0


def body_of(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    return token[len(TOKEN_PREFIX) :]


def decoded(token: str) -> bytes:
    body = body_of(token)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def with_char_changed(token: str, index: int) -> str:
    """The token with one base64 character of its body replaced by another."""
    body = body_of(token)
    replacement = "B" if body[index] == "A" else "A"
    return TOKEN_PREFIX + body[:index] + replacement + body[index + 1 :]


def refused(token: object, secrets: tuple[str, ...] = SECRETS, now: float = NOW) -> str:
    with pytest.raises(FlowTokenError) as raised:
        read_token(token, secrets, now=now)
    return str(raised.value)


# --- issue_token / read_token --------------------------------------------------------------


def test_a_token_reads_back_as_its_conversation_attempt_and_expiry() -> None:
    token = issue_token(CONVERSATION, SECRETS, ttl_seconds=600, now=NOW)

    read = read_token(token, SECRETS, now=NOW + 599)

    assert read.conversation_id == CONVERSATION
    assert read.expires_at == int(NOW + 600)
    assert read.attempt
    assert read_token(token, SECRETS, now=NOW) == read


def test_the_default_lifetime_is_used_without_a_ttl() -> None:
    token = issue_token(CONVERSATION, SECRETS, now=NOW)
    assert read_token(token, SECRETS, now=NOW).expires_at == int(NOW + DEFAULT_TTL_SECONDS)


def test_two_tokens_for_one_conversation_differ() -> None:
    first = issue_token(CONVERSATION, SECRETS, now=NOW)
    second = issue_token(CONVERSATION, SECRETS, now=NOW)

    assert first != second
    assert decoded(first)[:12] != decoded(second)[:12]
    assert (
        read_token(first, SECRETS, now=NOW).attempt != read_token(second, SECRETS, now=NOW).attempt
    )


def test_the_token_does_not_reveal_the_conversation_id() -> None:
    token = issue_token(CONVERSATION, SECRETS, now=NOW)

    assert CONVERSATION not in token
    assert CONVERSATION.encode() not in decoded(token)
    assert b'"c"' not in decoded(token)  # the claims are sealed, not merely encoded


def test_an_expired_token_is_refused() -> None:
    token = issue_token(CONVERSATION, SECRETS, ttl_seconds=60, now=NOW)
    assert "expired" in refused(token, now=NOW + 61)
    assert "expired" in refused(token, now=NOW + 10 * DEFAULT_TTL_SECONDS)


@pytest.mark.parametrize("where", ["first", "middle", "tag"])
def test_a_token_with_one_character_changed_is_refused(where: str) -> None:
    token = issue_token(CONVERSATION, SECRETS, now=NOW)
    length = len(body_of(token))
    index = {"first": 0, "middle": length // 2, "tag": length - 4}[where]

    refused(with_char_changed(token, index))


def test_a_token_issued_under_another_secret_is_refused() -> None:
    token = issue_token(CONVERSATION, ("another-shop-secret",), now=NOW)
    assert "not issued" in refused(token)


def test_tokens_survive_a_secret_rotation() -> None:
    before = issue_token(CONVERSATION, ("old",), now=NOW)
    assert read_token(before, ("old", "new"), now=NOW).conversation_id == CONVERSATION

    during = issue_token(CONVERSATION, ("old", "new"), now=NOW)
    assert read_token(during, ("new",), now=NOW).conversation_id == CONVERSATION
    refused(during, secrets=("old",))


@pytest.mark.parametrize(
    "token",
    [
        None,
        12345,
        b"ft1.AAAA",
        "",
        "ft2." + "A" * 80,
        "A" * 80,
        TOKEN_PREFIX,
        TOKEN_PREFIX + "A",
        TOKEN_PREFIX + "AAAAA",
        TOKEN_PREFIX + "!!!!$$$$%%%%",
        TOKEN_PREFIX + "A" * 8,
        TOKEN_PREFIX + "A" * 40,
    ],
    ids=[
        "none",
        "int",
        "bytes",
        "empty",
        "wrong prefix",
        "no prefix",
        "prefix only",
        "one character",
        "bad padding",
        "not base64",
        "shorter than a nonce",
        "nonce and no tag",
    ],
)
def test_anything_that_is_not_one_of_our_tokens_is_refused(token: object) -> None:
    refused(token)


# --- flow_token_signature (Meta's JWT over the flow token) ---------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def hand_made_jwt(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A JWT signed with HMAC-SHA256 whatever its header claims."""
    signed = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64url(mac)


def meta_signature(flow_token: str, secret: str, expires_at: int, **claims: Any) -> str:
    """A flow_token_signature as Meta makes it: HS256 with the app secret."""
    return jwt.encode(
        {"flow_token": flow_token, "exp": expires_at, **claims}, secret, algorithm="HS256"
    )


TOKEN = "ft1.flow-token-under-test"
# App secrets shaped like Meta's (32 hex characters): the key length PyJWT expects for HS256.
APP_SECRET = "0123456789abcdef0123456789abcdef"
OLD_SECRET = "fedcba9876543210fedcba9876543210"
OTHER_SECRET = "00112233445566778899aabbccddeeff"
# PyJWT reads the real clock: signatures are dated around now.


def signed_at() -> int:
    """Now, when the test runs (PyJWT reads the real clock, so no time fixed at import)."""
    return int(time.time())


def later() -> int:
    return signed_at() + 300


PAST_LEEWAY = FLOW_TOKEN_SIGNATURE_LEEWAY_SECONDS + 60


def verifies(signature: str, secrets: tuple[str, ...] = (APP_SECRET,)) -> bool:
    return verify_flow_token_signature(signature, TOKEN, secrets)


def test_a_valid_signature_verifies() -> None:
    assert verifies(meta_signature(TOKEN, APP_SECRET, later()))


def test_our_own_jwt_builder_agrees_with_the_signer() -> None:
    signature = hand_made_jwt(
        {"alg": "HS256", "typ": "JWT"}, {"flow_token": TOKEN, "exp": later()}, OTHER_SECRET
    )
    assert verifies(signature, (OTHER_SECRET,))


def test_a_signature_with_another_secret_fails() -> None:
    assert not verifies(meta_signature(TOKEN, OTHER_SECRET, later()))


def test_a_signature_over_another_flow_token_fails() -> None:
    assert not verifies(meta_signature("ft1.another-token", APP_SECRET, later()))


@pytest.mark.parametrize("flow_token", [12345, None, ["ft1.flow-token-under-test"]])
def test_a_flow_token_claim_that_is_not_a_string_fails(flow_token: object) -> None:
    signature = jwt.encode({"flow_token": flow_token, "exp": later()}, APP_SECRET)
    assert not verifies(signature)


def test_an_expired_signature_fails() -> None:
    assert not verifies(meta_signature(TOKEN, APP_SECRET, signed_at() - PAST_LEEWAY))


@pytest.mark.parametrize(
    "claims",
    [{"iat": PAST_LEEWAY}, {"nbf": PAST_LEEWAY}, {"exp": "tomorrow"}],
    ids=["issued in the future", "not yet valid", "exp not a number"],
)
def test_a_signature_not_in_date_fails(claims: dict[str, Any]) -> None:
    # iat/nbf are given as seconds from now
    dated = {k: signed_at() + v if isinstance(v, int) else v for k, v in claims.items()}
    assert not verifies(meta_signature(TOKEN, APP_SECRET, later(), **dated))


def test_a_few_seconds_of_clock_difference_with_meta_are_tolerated() -> None:
    skew = FLOW_TOKEN_SIGNATURE_LEEWAY_SECONDS // 2
    ahead = meta_signature(
        TOKEN, APP_SECRET, later(), iat=signed_at() + skew, nbf=signed_at() + skew
    )
    assert verifies(ahead)
    assert verifies(meta_signature(TOKEN, APP_SECRET, signed_at() - skew))


def test_a_signature_without_a_flow_token_claim_or_with_an_audience_verifies() -> None:
    # As before PyJWT: the flow token is compared when the JWT names one; `aud` is not checked.
    assert verifies(jwt.encode({"exp": later()}, APP_SECRET, algorithm="HS256"))
    assert verifies(meta_signature(TOKEN, APP_SECRET, later(), aud="some-meta-app"))


@pytest.mark.parametrize(
    "header",
    [{"alg": "none"}, {"alg": "HS512", "typ": "JWT"}, {"alg": "RS256"}, {"typ": "JWT"}],
    ids=["none", "hs512", "rs256", "no alg"],
)
def test_a_signature_with_another_algorithm_fails(header: dict[str, Any]) -> None:
    assert not verifies(hand_made_jwt(header, {"flow_token": TOKEN, "exp": later()}, APP_SECRET))


def test_an_unsigned_alg_none_token_fails() -> None:
    claims = {"flow_token": TOKEN, "exp": later()}
    signed = hand_made_jwt({"alg": "none"}, claims, "x").rsplit(".", 1)[0]
    assert not verifies(signed + ".")
    assert not verifies(jwt.encode(claims, "", algorithm="none"))


# The app secret is too short a key for HS512: PyJWT warns when signing, as it should.
@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_a_signature_made_with_another_hmac_hash_and_the_right_secret_fails() -> None:
    assert not verifies(jwt.encode({"flow_token": TOKEN, "exp": later()}, APP_SECRET, "HS512"))


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "only.two",
        "a.b.c.d",
        "!!!.###.$$$",
        b64url(b"not json") + "." + b64url(b"{}") + ".AAAA",
        b64url(b'["HS256"]') + "." + b64url(b"{}") + ".AAAA",
        b64url(b'{"alg":"HS256"}') + "." + b64url(b"[]") + ".AAAA",
        b64url(b'{"alg":"HS256"}') + "." + b64url(b"{}") + ".A",
        b64url(b"[" * 100_000) + "." + b64url(b"{}") + ".AAAA",
        "é.é.é",
        "\ud800.a.b",
    ],
    ids=[
        "empty",
        "two parts",
        "four parts",
        "bad base64",
        "header not json",
        "header a list",
        "claims a list",
        "bad mac encoding",
        "header nested too deep",
        "not ascii",
        "lone surrogate",
    ],
)
def test_a_malformed_signature_fails(signature: str) -> None:
    assert not verifies(signature)


def test_a_signature_with_the_old_secret_verifies_during_rotation() -> None:
    signature = meta_signature(TOKEN, OLD_SECRET, later())
    assert verifies(signature, (OLD_SECRET, APP_SECRET))
    assert not verifies(signature, (APP_SECRET,))


def test_a_token_is_accepted_only_for_the_conversation_it_was_issued_for() -> None:
    token = issue_token("15550001111", SECRETS)
    assert read_token_for(token, "15550001111", SECRETS).conversation_id == "15550001111"
    with pytest.raises(FlowTokenError, match="another conversation"):
        read_token_for(token, "15550002222", SECRETS)


def test_read_token_for_refuses_an_expired_token() -> None:
    token = issue_token("15550001111", SECRETS, ttl_seconds=60, now=1_000_000.0)
    assert read_token_for(token, "15550001111", SECRETS, now=1_000_059.0).attempt
    with pytest.raises(FlowTokenError, match="expired"):
        read_token_for(token, "15550001111", SECRETS, now=1_000_061.0)
