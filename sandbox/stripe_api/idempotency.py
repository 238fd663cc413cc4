"""Stripe's idempotent requests: a POST with an `Idempotency-Key` is done once, and the same
request again gets the first answer replayed; the key with other parameters is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.stripe_api.errors import StripeApiError


@dataclass
class _Stored:
    """An idempotent request's first parameters and the answer replayed for its key."""

    endpoint: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]


class IdempotencyKeys:
    """The answers given under each key so far."""

    def __init__(self) -> None:
        self._stored: dict[str, _Stored] = {}

    def replay(
        self, key: str, endpoint: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        """The status and body first answered under `key`, or None for a new key; Stripe's
        idempotency_error when `key` was first used for another request."""
        stored = self._stored.get(key)
        if stored is None:
            return None
        if stored.endpoint != endpoint or stored.params != params:
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same "
                f"parameters they were first used with. Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
            )
        return stored.status, stored.body

    def remember(
        self, key: str, endpoint: str, params: dict[str, Any], status: int, body: dict[str, Any]
    ) -> None:
        """Keeps the answer to replay for `key`."""
        self._stored[key] = _Stored(endpoint, params, status, body)
