"""X-Hub-Signature-256: Meta's HMAC-SHA256 of the raw body, with secret rotation."""

from __future__ import annotations

import json

import pytest

from connectors.edge.signatures import (
    hub_signature,
    stripe_signature,
    verify_hub_signature,
    verify_stripe_signature,
)
from shop_contract.app_secrets import split_secrets

SECRET = "app-secret-for-tests"
BODY = json.dumps(
    {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]}
).encode()


def test_signature_matches_the_hmac_sha256_reference_vector() -> None:
    # RFC 4231, test case 2.
    assert hub_signature(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_valid_signature_is_accepted() -> None:
    assert verify_hub_signature(BODY, hub_signature(BODY, SECRET), [SECRET]) is True


def test_signature_with_another_secret_is_refused() -> None:
    assert verify_hub_signature(BODY, hub_signature(BODY, "someone-else"), [SECRET]) is False


@pytest.mark.parametrize("header", [None, "", "sha256="])
def test_missing_or_empty_header_is_refused(header: str | None) -> None:
    assert verify_hub_signature(BODY, header, [SECRET]) is False


def test_header_without_the_sha256_prefix_is_refused() -> None:
    digest = hub_signature(BODY, SECRET).removeprefix("sha256=")

    assert verify_hub_signature(BODY, digest, [SECRET]) is False
    assert verify_hub_signature(BODY, f"sha1={digest}", [SECRET]) is False
    assert verify_hub_signature(BODY, f"SHA256={digest}", [SECRET]) is False


def test_no_secrets_accepts_nothing() -> None:
    assert verify_hub_signature(BODY, hub_signature(BODY, SECRET), []) is False


def test_old_and_new_secret_are_both_accepted_during_rotation() -> None:
    secrets = split_secrets("old-secret, new-secret")

    assert secrets == ("old-secret", "new-secret")
    assert verify_hub_signature(BODY, hub_signature(BODY, "old-secret"), secrets) is True
    assert verify_hub_signature(BODY, hub_signature(BODY, "new-secret"), secrets) is True
    assert verify_hub_signature(BODY, hub_signature(BODY, "older-secret"), secrets) is False


def test_split_secrets_drops_blanks() -> None:
    assert split_secrets(" a ,, b ,") == ("a", "b")
    assert split_secrets(" , ") == ()


def test_reserialised_json_does_not_verify() -> None:
    header = hub_signature(BODY, SECRET)
    same_document = json.dumps(json.loads(BODY), separators=(",", ":")).encode()

    assert json.loads(same_document) == json.loads(BODY)
    assert same_document != BODY
    assert verify_hub_signature(same_document, header, [SECRET]) is False


def test_signature_of_another_body_does_not_verify() -> None:
    other = BODY.replace(b'"1"', b'"2"')

    assert verify_hub_signature(other, hub_signature(BODY, SECRET), [SECRET]) is False


@pytest.mark.parametrize("header", ["sha256=ü" + "0" * 63, "sha256=签名", "sha256=\u00a0"])
def test_non_ascii_header_is_refused_without_crashing(header: str) -> None:
    assert verify_hub_signature(BODY, header, [SECRET]) is False


STRIPE_BODY = b'{"id": "evt_1"}'


@pytest.mark.parametrize(
    "header",
    [
        "t=\u00b2,v1=00",  # a superscript two: str.isdigit() says yes, int() says no
        "t=\u0661\u0662,v1=00",  # Arabic-Indic digits
        "t=,v1=",
        "t=1e3,v1=00",
        "t=-5,v1=00",
        "t==,v1==",
        ",,,",
        "t=1700000000,v1=\u00e9\u00e9",
        "\u00ff\u00fe garbage \u2603",
    ],
)
def test_malformed_stripe_signature_headers_are_refused_without_crashing(header: str) -> None:
    assert verify_stripe_signature(STRIPE_BODY, header, ["whsec_x"], 1_700_000_000) is False


def test_stripe_signature_still_verifies_a_well_formed_header() -> None:
    header = stripe_signature(STRIPE_BODY, "whsec_x", 1_700_000_000)
    assert verify_stripe_signature(STRIPE_BODY, header, ["whsec_x"], 1_700_000_000) is True
