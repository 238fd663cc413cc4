"""Stripe's webhook: POST /webhooks/whatsapp/stripe.

Verified over the raw bytes (Stripe-Signature, 300 s tolerance, several secrets during
rotation) and recorded by event id before it is acknowledged; anything not verifiable is a
400 and leaves no record. Events are handled in the background, in order per customer: each
becomes an external intent in the customer's conversation, through Rasa's external-event
path (lock held, event recorded as external, the WhatsApp output channel). A payment
confirms its Checkout Session once, however many events report it and in whatever order,
and an order once: a later session paid for the same order triggers the payment intent
with `duplicate_payment: true`, which the action refunds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from rasa.core.channels.channel import OutputChannel
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.json_body import parse_json
from connectors.edge.signatures import verify_stripe_signature
from connectors.jobs.customer_queue import CustomerQueues
from connectors.jobs.leases import Hold
from connectors.log_refs import customer_ref
from connectors.metrics import STRIPE_EVENT_LAG_SECONDS, STRIPE_UNMAPPED_PAYMENTS
from connectors.rasa_patches.action_failures import watch_actions
from connectors.storage.leases import new_claim
from connectors.storage.paid_orders import PaidOrder
from connectors.storage.schema import stripe_events
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import (
    EventIntent,
    Skipped,
    customer_of,
    is_paid_session_event,
    map_event,
    map_recovered,
    payment_intent_of,
    recovered_from_of,
    recovery_record,
)
from connectors.stripe.paid_index import confirm_paid, index_event
from shop_contract.entities import DUPLICATE_PAYMENT, HANDED_OVER, ORDER_ID
from shop_contract.intents import CHECKOUT_EXPIRED, CHECKOUT_REMINDER

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024


class StripeWebhook:
    """Receives Stripe events and feeds them into conversations."""

    def __init__(
        self,
        secrets: tuple[str, ...],
        store: ConnectorStore,
        queues: CustomerQueues,
        make_output: Callable[[str], OutputChannel],
        hold: Hold,
        person_has: PersonHas | None = None,
    ) -> None:
        self.secrets = secrets
        self.store = store
        self.queues = queues
        self.make_output = make_output
        self.hold = hold
        self.person_has = person_has
        self.outcomes: Counter[str] = Counter()

    async def handle(self, request: Request) -> HTTPResponse:
        body = request.body or b""
        if len(body) > MAX_BODY_BYTES:
            return response.json({"error": "body too large"}, status=413)
        if not self.secrets:
            logger.warning("stripe event refused: STRIPE_WEBHOOK_SECRET is not set")
            return response.json({"error": "webhook secret not configured"}, status=503)
        if not verify_stripe_signature(
            body, request.headers.get("Stripe-Signature"), self.secrets, time.time()
        ):
            logger.warning("stripe event with a missing, wrong or stale signature")
            return response.json({"error": "invalid signature"}, status=400)
        try:
            event = parse_json(body)
        except ValueError:  # invalid UTF-8 included
            return response.json({"error": "not JSON"}, status=400)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return response.json({"error": "not a Stripe event"}, status=400)
        event_id, event_type = event["id"], str(event.get("type") or "")
        if isinstance(event.get("created"), int | float):
            STRIPE_EVENT_LAG_SECONDS.observe(max(0.0, time.time() - event["created"]))
        try:
            mapped = await self.resolve(event)
            customer_id = (
                mapped.customer_id if isinstance(mapped, EventIntent) else customer_of(event)
            )
            claim = new_claim()
            fresh = await asyncio.to_thread(
                self.store.stripe.record_event,
                event_id,
                event_type,
                json.dumps(event),
                customer_id,
                claim,
                recovery_record(mapped),
            )
        except Exception:
            logger.exception("could not record stripe event %s; Stripe will retry", event_id)
            return response.json({"error": "storage unavailable"}, status=503)
        if not fresh:
            logger.info("stripe event re-delivered: %s", event_id)
            return response.json({"status": "duplicate"})
        self.schedule(request.app.ctx.agent, event, claim, mapped=mapped)
        return response.json({"status": "received"})

    async def resolve(self, event: dict[str, Any]) -> EventIntent | Skipped:
        """The event's intent; for a recovered copy that lost our metadata, through the
        customer and order recorded with the expiry of the session it was recovered from.
        A paid session that maps to no customer is `unmapped_payment`: someone paid and
        nobody would tell them."""
        mapped = map_event(event)
        if not isinstance(mapped, Skipped) or mapped.reason != "missing_metadata":
            return mapped
        origin = recovered_from_of(event)
        found = (
            await asyncio.to_thread(self.store.stripe.recovery_origin, origin) if origin else None
        )
        if found is not None:
            return map_recovered(event, *found)
        if (paid := await self.paid_order_of(event)) is not None:
            return map_recovered(event, paid.customer_id, paid.order_id)
        await self.keep_refund_total(event)
        return Skipped("unmapped_payment") if is_paid_session_event(event) else mapped

    async def keep_refund_total(self, event: dict[str, Any]) -> None:
        """Keeps the cumulative refund of a `charge.refunded` whose order is not known yet
        (no metadata, not indexed yet): applied when the paid event indexes the order."""
        payment_intent = payment_intent_of(event)
        if event.get("type") != "charge.refunded" or payment_intent is None:
            return
        data = event.get("data")
        charge = data.get("object") if isinstance(data, dict) else None
        refunded = charge.get("amount_refunded") if isinstance(charge, dict) else None
        if isinstance(refunded, int) and not isinstance(refunded, bool):
            await asyncio.to_thread(
                self.store.paid_orders.note_refund_total, payment_intent, refunded
            )

    def schedule(
        self,
        agent: Any,
        event: dict[str, Any],
        claim: str,
        done: Callable[[str], None] | None = None,
        mapped: EventIntent | Skipped | None = None,
    ) -> None:
        """Handles a recorded event held under `claim` in the background, in its customer's
        order, unless by its turn it was finished or taken over; `done` is called with the
        event id when the handling ends, however it ends. `mapped` is the event's intent
        when known (`resolve`); a replay resolves it in its job, queued under the event
        when its metadata does not name the customer."""
        event_id, event_type = str(event["id"]), str(event.get("type") or "")
        known = map_event(event) if mapped is None else mapped
        key = known.customer_id if isinstance(known, EventIntent) else f"stripe:{event_id}"

        async def job() -> None:
            try:
                if await asyncio.to_thread(self.store.leases.holds, stripe_events, event_id, claim):
                    resolved = await self.resolve(event) if mapped is None else mapped
                    await self.process(agent, event_id, event_type, resolved)
                else:
                    logger.info("stripe event %s skipped: no longer ours", event_id)
            finally:
                if done is not None:
                    done(event_id)

        self.queues.submit(
            key, job, f"stripe event {event_id}", self.hold(stripe_events, event_id, claim)
        )

    async def process(
        self, agent: Any, event_id: str, event_type: str, mapped: EventIntent | Skipped
    ) -> None:
        """Triggers the event's intent (once per fulfilment) and records the outcome."""
        outcome = await self.outcome_of(agent, event_id, mapped)
        self.outcomes[outcome] += 1
        if outcome == "unmapped_payment":
            STRIPE_UNMAPPED_PAYMENTS.inc()
            logger.error(
                "stripe event=%s type=%s outcome=%s: a paid Checkout Session names no "
                "customer; find the payment at Stripe and tell or refund the customer by hand",
                event_id,
                event_type,
                outcome,
            )
        elif isinstance(mapped, Skipped):
            level = logging.WARNING if outcome == "missing_metadata" else logging.INFO
            logger.log(level, "stripe event=%s type=%s outcome=%s", event_id, event_type, outcome)
        else:
            logger.info(
                "stripe event=%s type=%s order=%s customer=%s outcome=%s",
                event_id,
                event_type,
                mapped.entities.get("order_id"),
                customer_ref(mapped.customer_id),
                outcome,
            )
        await asyncio.to_thread(self.store.stripe.mark_processed, event_id, outcome)

    async def outcome_of(self, agent: Any, event_id: str, mapped: EventIntent | Skipped) -> str:
        if isinstance(mapped, Skipped):
            return mapped.reason
        outcome = "triggered"
        await index_event(self.store, mapped)
        if mapped.fulfilment_key:
            if not await asyncio.to_thread(
                self.store.stripe.claim_fulfilment, mapped.fulfilment_key, event_id
            ):
                await confirm_paid(self.store, agent, mapped)  # a replay after a crash
                return "already_fulfilled"
            if not await self.first_payment_of_order(mapped):
                mapped = replace(mapped, entities={**mapped.entities, DUPLICATE_PAYMENT: True})
                outcome = "duplicate_payment"
        mapped = await noting_handover(self.person_has, mapped)
        async with watch_actions():  # a failed action leaves the event for a replay
            await trigger_external(agent, mapped, self.make_output(outbox_origin(event_id, mapped)))
        if outcome == "triggered":  # a duplicate payment confirms nothing
            await confirm_paid(self.store, agent, mapped)
        return outcome

    async def paid_order_of(self, event: dict[str, Any]) -> PaidOrder | None:
        """For a refund without our metadata (the charge of a recovered copy): the confirmed
        order its PaymentIntent paid, from the index of paid orders."""
        if event.get("type") != "charge.refunded":
            return None
        payment_intent = payment_intent_of(event)
        if payment_intent is None:
            return None
        return await asyncio.to_thread(self.store.paid_orders.by_payment_intent, payment_intent)

    async def first_payment_of_order(self, mapped: EventIntent) -> bool:
        """Whether the paid Checkout Session is the first of its order (which it confirms)
        rather than a second payment of it, which the action refunds."""
        order_id = mapped.entities.get(ORDER_ID)
        if not isinstance(order_id, str) or mapped.fulfilment_key is None:
            return True  # no order to hold the claim: the session claim is all there is
        return await asyncio.to_thread(
            self.store.stripe.claim_order_payment,
            mapped.customer_id,
            order_id,
            mapped.fulfilment_key,
        )


def outbox_origin(event_id: str, mapped: EventIntent) -> str:
    """What the turn's notifications are keyed by in the outbox: the event, so a replayed
    turn queues nothing twice; for an expired link, the order itself, so whatever events
    report its links expiring (each of its sessions, re-sent, replayed, on two replicas)
    the customer is followed up at most once for it, by the outbox's unique key."""
    order_id = mapped.entities.get(ORDER_ID)
    if mapped.intent == CHECKOUT_EXPIRED and isinstance(order_id, str):
        return f"expired-link:{customer_ref(mapped.customer_id)}:{order_id}"
    return event_id


# The turns whose message is an automatic nudge, silent while a person has the conversation.
NUDGES = frozenset({CHECKOUT_EXPIRED, CHECKOUT_REMINDER})
# (customer id) -> whether a person has the customer's conversation now: the hand-over pause's
# judgement (connectors/handover/pause.py `person_has`: open, and staff wrote in time).
PersonHas = Callable[[str], Awaitable[bool]]


async def noting_handover(person_has: PersonHas | None, mapped: EventIntent) -> EventIntent:
    """The turn, with HANDED_OVER when a person has the customer's conversation now: the
    automatic nudges (a reminder, a recovery message) stay silent then, since the customer's
    replies, a "stop" among them, go to the shop. Only the connector knows: the actions'
    `handover` slot is set whenever a person is asked for, whether one could be or not.
    Asked only for the turns that nudge: no lookup for every other Stripe event."""
    if mapped.intent not in NUDGES or person_has is None:
        return mapped
    if not await person_has(mapped.customer_id):
        return mapped
    return replace(mapped, entities={**mapped.entities, HANDED_OVER: True})


async def trigger_external(agent: Any, mapped: EventIntent, output: OutputChannel) -> None:
    """Rasa's external-event path, as its trigger_intent API route takes it."""
    async with agent.lock_store.lock(mapped.customer_id):
        tracker = await agent.processor.fetch_tracker_and_update_session(mapped.customer_id, output)
        await agent.trigger_intent(
            intent_name=mapped.intent,
            entities=mapped.entities,
            output_channel=output,
            tracker=tracker,
        )
