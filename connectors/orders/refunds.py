"""Refunds the shop asks for, through Stripe's Refunds API.

The connector's own Stripe client, made like the action server's (actions/payments/client.py:
the same pinned API version, retries and an async HTTP client), since the two processes
share no code but shop_contract. Refunds are the connector's because the operator wants
Stripe's answer (refused, too much, done) in the reply to the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import stripe

from shop_contract.stripe_metadata import ORDER_ID_KEY, STRIPE_API_VERSION

logger = logging.getLogger(__name__)

REFUND_KEY_METADATA = "shop_refund_key"
STRIPE_NETWORK_RETRIES = 2
STRIPE_TIMEOUT_SECONDS = 15.0
# The longest a refund request can take: every attempt timing out, plus the client's backoff
# between them (at most 2 s each). `make orders` waits longer than this, and it stays under
# Sanic's 60-second response timeout.
REFUND_WORST_CASE_SECONDS = (STRIPE_NETWORK_RETRIES + 1) * STRIPE_TIMEOUT_SECONDS + 2.0 * (
    STRIPE_NETWORK_RETRIES
)


@dataclass(frozen=True)
class RefundDone:
    refund_id: str
    amount: int
    status: str
    replayed: bool = False  # Stripe answered with the refund made earlier under the key


class RefundRefused(Exception):
    """Stripe refused the refund (`conflict`: the key was used for another request, or the
    charge has nothing left), or could not be reached."""

    def __init__(self, message: str, conflict: bool, nothing_done: bool | None = None) -> None:
        super().__init__(message)
        self.conflict = conflict
        # Whether Stripe surely made no refund under the key (a refusal of the request
        # itself); not so for a key clash, whose earlier request may have refunded.
        self.nothing_done = conflict if nothing_done is None else nothing_done


class Refunds:
    """Makes refunds on one Stripe account."""

    def __init__(self, secret_key: str, api_base: str) -> None:
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base},
            max_network_retries=STRIPE_NETWORK_RETRIES,
            http_client=stripe.AIOHTTPClient(timeout=STRIPE_TIMEOUT_SECONDS),
        )

    async def refund(
        self, order_id: str, payment_intent: str, amount: int, idempotency_key: str
    ) -> RefundDone:
        """Refunds `amount` (minor units) of `payment_intent`; the same key gives back the
        same refund, never a second one. RefundRefused when Stripe says no."""
        try:
            refund = await self.client.v1.refunds.create_async(
                params={
                    "payment_intent": payment_intent,
                    "amount": amount,
                    # The request's key, to match a refund to its request in the dashboard.
                    "metadata": {ORDER_ID_KEY: order_id, REFUND_KEY_METADATA: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.IdempotencyError as error:
            raise RefundRefused(
                "this Idempotency-Key was used for another refund request",
                conflict=True,
                nothing_done=False,
            ) from error
        except stripe.InvalidRequestError as error:
            logger.warning("refund refused by stripe: order=%s code=%s", order_id, error.code)
            raise RefundRefused(
                f"Stripe refused the refund: {error.user_message or error.code}", True
            ) from error
        except stripe.StripeError as error:
            logger.warning(
                "refund failed: order=%s error=%s code=%s",
                order_id,
                type(error).__name__,
                error.code,
            )
            raise RefundRefused(
                f"Stripe could not be reached or failed ({type(error).__name__}); nothing was "
                "refunded unless Stripe says otherwise: repeat with the same Idempotency-Key to "
                "be sure (never without it: that could refund twice)",
                conflict=False,
            ) from error
        return RefundDone(refund.id, int(refund.amount), str(refund.status), replayed(refund))

    async def made_under(self, payment_intent: str, idempotency_key: str) -> RefundDone | None:
        """The refund of `payment_intent` made under `idempotency_key`, found by the key its
        metadata carries; None when there is none. Asked before a request is sent again:
        Stripe forgets keys after 24 hours, and would then make a second refund.
        RefundRefused (no conflict) when Stripe cannot say."""
        try:
            page = await self.client.v1.refunds.list_async(
                params={"payment_intent": payment_intent, "limit": 100}
            )
            async for refund in page.auto_paging_iter():
                metadata = refund.metadata.to_dict() if refund.metadata else {}
                if metadata.get(REFUND_KEY_METADATA) == idempotency_key:
                    return RefundDone(refund.id, int(refund.amount), str(refund.status), True)
        except stripe.StripeError as error:
            logger.warning(
                "refund lookup failed: error=%s code=%s", type(error).__name__, error.code
            )
            raise RefundRefused(
                f"Stripe could not say whether the refund was made ({type(error).__name__}): "
                "repeat with the same Idempotency-Key",
                conflict=False,
            ) from error
        return None


def replayed(refund: stripe.StripeObject) -> bool:
    """Whether Stripe's answer is a replay of an earlier request under the same key."""
    answer = refund.last_response
    if answer is None:
        return False
    headers = {name.lower(): value for name, value in answer.headers.items()}
    return str(headers.get("idempotent-replayed", "")).lower() == "true"
