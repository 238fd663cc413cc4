"""The Stripe emulator of the sandbox, under the name the tests know it by."""

from sandbox.stripe_api import (
    StripeApiError,
    StripeEmulator,
    StripeRequest,
    decode_form,
    lock_timeout,
)

FakeStripeApi = StripeEmulator

__all__ = ["FakeStripeApi", "StripeApiError", "StripeRequest", "decode_form", "lock_timeout"]
