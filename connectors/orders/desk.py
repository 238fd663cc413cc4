"""What an operator may do to a paid order, checked against the index of paid orders.

- ship / deliver: the order must be in the index (paid), not wholly refunded, and the move
  forward (shop_contract/fulfilment.py). The index records it, then the customer's
  conversation gets `EXTERNAL_order_shipped` / `_delivered`, whose messages the outbox keys
  by order, step and tracking link. Asking again with the same details records nothing
  new and runs the turn again, which queues nothing twice: the way to be sure after a
  failure.
- refund: all that is left, or `amount` minor units of it, of the order's own payment,
  under the caller's Idempotency-Key (required; `refund_key`), recorded with the amount it
  resolved to before Stripe is called. A retry first looks for the refund made under the
  key (Stripe forgets keys after 24 hours). The customer hears of it from Stripe's
  `charge.refunded`, as for any refund, so a retried request never tells them twice. A
  subscription order has no single payment to refund: refused (the Stripe dashboard handles
  those).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.log_refs import customer_ref
from connectors.orders.refunds import RefundDone, RefundRefused, Refunds
from connectors.orders.turns import Told
from connectors.storage.paid_orders import LISTINGS, MAX_LISTED, PaidOrder
from connectors.storage.refund_requests import RefundPending, RefundRequest
from connectors.storage.store import ConnectorStore
from shop_contract.entities import CARRIER, ORDER_ID, TRACKING_URL
from shop_contract.fulfilment import (
    Fulfilment,
    can_fulfil,
    checked_carrier,
    checked_tracking_url,
)
from shop_contract.intents import ORDER_DELIVERED, ORDER_SHIPPED

# (customer id, intent, entities, outbox origin): runs the turn in the customer's order,
# waiting a little for it: whether the customer was told, and why not.
Trigger = Callable[[str, str, dict[str, Any], str], Awaitable[Told]]
# (customer id, order id): looks at the conversation again for an unconfirmed order, True
# when it shows it paid and the order is confirmed now.
Recheck = Callable[[str, str], Awaitable[bool]]


class OrderRequestError(Exception):
    """A request refused; `status` is its HTTP status."""

    status = 400


class UnknownOrder(OrderRequestError):
    status = 404


class OrderConflict(OrderRequestError):
    status = 409


class StripeFailed(OrderRequestError):
    status = 502


MISSING_KEY = (
    "a refund needs an Idempotency-Key header (a new random one per refund, e.g. a UUID): "
    "repeating the request with the same key never refunds twice"
)


# A request Stripe never answered blocks a refund under another key of the same order for this
# long (Stripe keeps an idempotency key for 24 hours: the retry it asks for works until then).
UNKNOWN_OUTCOME_SECONDS = 24 * 3600


class RefundsOff(OrderRequestError):
    status = 503


def shown(order: PaidOrder) -> dict[str, Any]:
    """An order as operators see it: no phone number, a customer reference for the logs."""
    return {
        "order_id": order.order_id,
        "customer": customer_ref(order.customer_id),
        "amount": order.amount,
        "amount_refunded": order.amount_refunded,
        "currency": order.currency,
        "fulfilment": order.fulfilment.value,
        "carrier": order.carrier,
        "tracking_url": order.tracking_url,
        "paid_at": order.paid_at,
        "subscription": order.subscription is not None,
        "confirmed": order.confirmed,
    }


def outbox_origin(order: PaidOrder, state: Fulfilment) -> str:
    """One key per order, step and (for a shipment) carrier, link and the row's revision: a
    correction is told (back to an earlier link too), a repeat is not."""
    step = f"{customer_ref(order.customer_id)}:{order.order_id}:{state.value}"
    if state == Fulfilment.SHIPPED:
        details = f"{order.carrier}\0{order.tracking_url}".encode()
        step += ":" + hashlib.sha256(details).hexdigest()[:16] + f":r{order.revision}"
    return f"fulfilment:{step}"


def same_amount(request: RefundRequest, amount: int | None) -> RefundRequest:
    """The request, when `amount` (None: all that is left) is what its key was used for."""
    if amount is not None and amount != request.amount:
        raise OrderConflict(
            f"this Idempotency-Key was used for a refund of {request.amount}: use a new "
            "key for another refund"
        )
    return request


def refund_key(order_id: str, request_key: str) -> str:
    """The Stripe idempotency key of a refund request: the caller's Idempotency-Key, per
    order. There is no refund without one: a key the server made up from the request could
    not tell a retry from a second refund once the first one shows in the index."""
    return f"orders-refund-{order_id}-key-{request_key}"


class OrdersDesk:
    """The operator's requests on paid orders."""

    def __init__(
        self,
        store: ConnectorStore,
        refunds: Refunds | None,
        trigger: Trigger,
        recheck: Recheck | None = None,
    ) -> None:
        self.store = store
        self.refunds = refunds
        self.trigger = trigger
        self.recheck = recheck

    async def listing(self, status: str) -> tuple[list[dict[str, Any]], bool]:
        """The orders (oldest first, at most MAX_LISTED) and whether there are more."""
        if status not in LISTINGS:
            raise OrderRequestError(f"status must be one of {', '.join(LISTINGS)}")
        found = await asyncio.to_thread(self.store.paid_orders.listing, status)
        return [shown(order) for order in found[:MAX_LISTED]], len(found) > MAX_LISTED

    async def order(self, order_id: str) -> PaidOrder:
        """The indexed order, confirmed by the bot; UnknownOrder or OrderConflict if not."""
        found = await asyncio.to_thread(self.store.paid_orders.get, order_id)
        if found is None:
            raise UnknownOrder(f"no paid order {order_id}")
        recheck = self.recheck
        if not found.confirmed and recheck and await recheck(found.customer_id, order_id):
            # the paid turn's look missed (the store failing then): healed by this one
            found = await asyncio.to_thread(self.store.paid_orders.get, order_id) or found
        if not found.confirmed:
            raise OrderConflict(
                f"order {order_id} was paid at Stripe but the bot never confirmed it (a "
                "cancelled order's payment, one that did not match the order, or an order the "
                "conversation does not hold): see `list --status unconfirmed` and the Stripe "
                "dashboard"
            )
        return found

    async def ship(self, order_id: str, carrier: Any, tracking_url: Any) -> dict[str, Any]:
        try:
            name, link = checked_carrier(carrier), checked_tracking_url(tracking_url)
        except ValueError as bad:
            raise OrderRequestError(str(bad)) from None
        order = await self.moved(order_id, Fulfilment.SHIPPED, name, link)
        told = await self.trigger(
            order.customer_id,
            ORDER_SHIPPED,
            {ORDER_ID: order.order_id, CARRIER: name, TRACKING_URL: link},
            outbox_origin(order, Fulfilment.SHIPPED),
        )
        return {**shown(order), "told": told.told, "reason": told.reason}

    async def deliver(self, order_id: str) -> dict[str, Any]:
        order = await self.moved(order_id, Fulfilment.DELIVERED)
        told = await self.trigger(
            order.customer_id,
            ORDER_DELIVERED,
            {ORDER_ID: order.order_id},
            outbox_origin(order, Fulfilment.DELIVERED),
        )
        return {**shown(order), "told": told.told, "reason": told.reason}

    async def moved(
        self,
        order_id: str,
        state: Fulfilment,
        carrier: str | None = None,
        tracking_url: str | None = None,
    ) -> PaidOrder:
        """The order once marked `state` in the index (as it is, when it was already marked
        so with these details); OrderRequestError when it may not be."""
        order = await self.order(order_id)
        if order.wholly_refunded:
            raise OrderConflict(f"order {order_id} is refunded in full: nothing to {state.value}")
        repeat = order.fulfilment == state and (
            state == Fulfilment.DELIVERED
            or (order.carrier, order.tracking_url) == (carrier, tracking_url)
        )
        if repeat:
            return order
        if not can_fulfil(order.fulfilment, state):
            raise OrderConflict(
                f"order {order_id} is {order.fulfilment.value}: it cannot be marked {state.value}"
            )
        if not await asyncio.to_thread(
            self.store.paid_orders.move, order, state, carrier, tracking_url
        ):
            raise OrderConflict(f"order {order_id} changed meanwhile: look again and repeat")
        return await self.order(order_id)

    async def refund(self, order_id: str, amount: Any, request_key: str | None) -> dict[str, Any]:
        """Refunds `amount` minor units (None: all that is left) of the order's payment, once
        per `request_key`: the amount it first resolved to is recorded before Stripe is
        called, so a retry with the key replays that refund whatever the index says by then."""
        if self.refunds is None:
            raise RefundsOff("refunds are off: STRIPE_SECRET_KEY is not set for the Rasa server")
        if request_key is None:
            raise OrderRequestError(MISSING_KEY)
        if amount is not None and (
            isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0
        ):
            raise OrderRequestError(
                "amount: a whole number of minor units above 0, e.g. 500 for 5.00"
            )
        order = await self.order(order_id)
        if order.subscription is not None:
            raise OrderConflict(
                f"order {order_id} is a subscription: refund its invoices in the Stripe "
                "dashboard, and cancel it there if it should not renew"
            )
        if order.payment_intent is None:
            raise OrderConflict(f"order {order_id} was free: nothing was charged to refund")
        requests = self.store.refund_requests
        request, retry = await self.refund_request(order, amount, request_key)
        if request.refund_id is not None:
            # Answered from the record, never by asking Stripe to create again: Stripe forgets
            # idempotency keys after 24 hours, and a key reused later would refund twice.
            return {
                **shown(order),
                "refund": {
                    "id": request.refund_id,
                    "amount": request.amount,
                    "status": "made earlier",
                },
                "repeated": True,
            }
        stripe_key = refund_key(order.order_id, request_key)
        try:
            made = None
            if retry:  # its refund may be made at Stripe, and the key forgotten there
                made = await self.refunds.made_under(order.payment_intent, stripe_key)
            done: RefundDone = made or await self.refunds.refund(
                order.order_id, order.payment_intent, request.amount, stripe_key
            )
        except RefundRefused as refused:
            if refused.nothing_done:  # Stripe said no: nothing refunded, no unknown outcome
                await asyncio.to_thread(requests.refused, order_id, request_key)
            raise (OrderConflict if refused.conflict else StripeFailed)(str(refused)) from None
        await asyncio.to_thread(requests.done, order_id, request_key, done.refund_id)
        return {
            **shown(order),
            "refund": {"id": done.refund_id, "amount": done.amount, "status": done.status},
            "repeated": done.replayed,
        }

    async def refund_request(
        self, order: PaidOrder, amount: int | None, request_key: str
    ) -> tuple[RefundRequest, bool]:
        """The request under `request_key`, recorded now or earlier (True: a retry), and the
        order's one refund with an unknown outcome from now on unless already answered:
        OrderConflict while another key's is (made within UNKNOWN_OUTCOME_SECONDS of its
        last attempt), whether that key is new or a retry."""
        requests, order_id = self.store.refund_requests, order.order_id
        since = time.time() - UNKNOWN_OUTCOME_SECONDS
        earlier = await asyncio.to_thread(requests.get, order_id, request_key)
        try:
            if earlier is None:
                wanted = order.refundable if amount is None else amount
                if wanted <= 0 or wanted > order.refundable:
                    raise OrderConflict(
                        f"order {order_id}: {order.refundable} of {order.amount} "
                        f"{order.currency} minor units left to refund, asked {wanted}"
                    )
                recorded = await asyncio.to_thread(
                    requests.record, order_id, request_key, wanted, since
                )
                return same_amount(recorded, amount), False  # a concurrent retry's first
            if same_amount(earlier, amount).refund_id is None:
                await asyncio.to_thread(requests.claim, order_id, request_key, since)
            return earlier, True
        except RefundPending as pending:
            if pending.key is None:
                raise OrderConflict(
                    f"another refund of order {order_id} was being made: look again and repeat"
                ) from None
            raise OrderConflict(
                f"a refund under key {pending.key} has an unknown outcome: retry with "
                f"--key {pending.key}"
            ) from None
