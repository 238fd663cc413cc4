"""The bearer-token check shared by the REST channel and the action server."""

from __future__ import annotations

import pytest

from shop_contract.bearer import bearer_refusal


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 401),
        ("", 401),
        ("Basic c2VjcmV0", 401),
        ("bearer s3cret", 401),  # the scheme is matched as sent by Rasa and our tools
        ("Bearer wrong", 403),
        ("Bearer s3cret-and-more", 403),
        ("Bearer ṡ3cret", 403),  # non-ASCII compares as bytes, never raises
    ],
)
def test_a_missing_or_wrong_token_is_refused(header: str | None, expected: int) -> None:
    refusal = bearer_refusal(header, "s3cret")
    assert refusal is not None and refusal[0] == expected


def test_the_right_token_passes_whitespace_around_it_aside() -> None:
    assert bearer_refusal("Bearer s3cret", "s3cret") is None
    assert bearer_refusal("Bearer  s3cret ", "s3cret") is None
