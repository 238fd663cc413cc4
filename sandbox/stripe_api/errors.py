"""Stripe's error answers: an HTTP status with Stripe's `{"error": {...}}` body, and the
failures a test can queue (a 500, a rate limit, a lock timeout, a declined card)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class StripeApiError(Exception):
    """An error answer: HTTP status and Stripe's `{"error": {...}}` body."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param
        self.headers = dict(headers or {})


def server_error() -> StripeApiError:
    """A 500 as Stripe sends it (the SDK retries it)."""
    return StripeApiError(500, "An unknown error occurred", error_type="api_error")


def rate_limited() -> StripeApiError:
    """A 429 from the request-rate limiter; Stripe does not advise a retry on it."""
    return StripeApiError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def lock_timeout() -> StripeApiError:
    """A 429 for an object locked by a concurrent request; Stripe says to retry it."""
    return StripeApiError(
        429,
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it.",
        code="lock_timeout",
        headers={"Stripe-Should-Retry": "true"},
    )


def card_declined() -> StripeApiError:
    """A 402 card error."""
    return StripeApiError(
        402, "Your card was declined.", error_type="card_error", code="card_declined"
    )


FAILURES_BY_STATUS: dict[int, Callable[[], StripeApiError]] = {
    500: server_error,
    429: rate_limited,
    402: card_declined,
}
