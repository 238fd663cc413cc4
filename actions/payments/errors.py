"""What a payment operation raises. A PaymentError's `customer_message` is safe to show the
customer; its detail (the exception's text) is for the logs."""

from __future__ import annotations


class PaymentError(Exception):
    """A payment operation failed; `customer_message` is safe to show the customer."""

    def __init__(self, customer_message: str, detail: str = "") -> None:
        super().__init__(detail or customer_message)
        self.customer_message = customer_message


class AlreadyPaid(PaymentError):
    """The Checkout Session to stop was paid in the meantime."""


class PaymentProcessing(PaymentError):
    """The Checkout Session to stop was completed with a payment that has not cleared yet
    (a bank debit): no new link until it succeeds or fails."""


class StripeUnavailable(Exception):
    """Stripe could not be asked now. Not a PaymentError: a payment turn lets it fail the
    action, so the connector leaves the Stripe event unfinished and replays it later."""


class PaymentsNotConfigured(PaymentError):
    """No STRIPE_SECRET_KEY: the shop cannot take payments yet."""


class AttemptUsed(PaymentError):
    """This order attempt's idempotency key made a session that is no longer open: the
    caller starts the next attempt."""
