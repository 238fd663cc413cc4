"""Stripe events, mapped to the conversation they concern and the intent they trigger.

Pure functions over the verified event JSON. The customer comes from our metadata
(`whatsapp_user_id`, `order_id`), which the Checkout Session carries and copies to the
PaymentIntent (payment mode) or Subscription (subscription mode). Payments that confirm an
order name the Checkout Session, so fulfilment can be claimed once per session, and carry
what the order is checked against (amount, currency, livemode, session) and the
PaymentIntent a duplicate payment is refunded through. Refunds carry the charge's `amount`
and its cumulative `amount_refunded`; an expiry, the session's recovery URL when it has
one. Every intent carries `stripe_event_id`, for the logs. A recovered copy of an expired
session that lost our metadata is mapped through what was recorded with that session's
expiry (`recovery_record`, `map_recovered`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shop_contract.entities import (
    AMOUNT,
    AMOUNT_REFUNDED,
    AMOUNT_TOTAL,
    CHECKOUT_SESSION_ID,
    CURRENCY,
    LIVEMODE,
    ORDER_ID,
    PAYMENT_INTENT,
    RECOVERY_URL,
    STRIPE_EVENT_ID,
    SUBSCRIPTION_ENDS_AT,
    SUBSCRIPTION_ID,
)
from shop_contract.intents import (
    CHECKOUT_EXPIRED,
    PAYMENT_FAILED,
    PAYMENT_PROCESSING,
    PAYMENT_SUCCEEDED,
    REFUNDED,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_ENDING,
    SUBSCRIPTION_RENEWAL_FAILED,
    SUBSCRIPTION_RENEWED,
    SUBSCRIPTION_RENEWING,
    SUBSCRIPTION_UPDATED,
)
from shop_contract.links import is_customer_link
from shop_contract.stripe_metadata import CUSTOMER_KEY, ORDER_ID_KEY

PAID_STATUSES = ("paid", "no_payment_required")
_SESSION_FIELDS = (AMOUNT_TOTAL, CURRENCY, LIVEMODE)
_CHARGE_FIELDS = (AMOUNT, AMOUNT_REFUNDED, CURRENCY, LIVEMODE)


@dataclass(frozen=True)
class EventIntent:
    """What an event means for one conversation."""

    customer_id: str
    intent: str
    entities: dict[str, Any] = field(default_factory=dict)
    fulfilment_key: str | None = None  # the Checkout Session a payment confirms


@dataclass(frozen=True)
class Skipped:
    """An event with nothing to do; `reason` is logged with the event id."""

    reason: str


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def subscription_metadata(invoice: dict[str, Any]) -> dict[str, Any]:
    """An invoice's subscription metadata (newer API versions nest it under `parent`)."""
    details = _dict(_dict(invoice.get("parent")).get("subscription_details"))
    return _dict(details.get("metadata")) or _dict(
        _dict(invoice.get("subscription_details")).get("metadata")
    )


def customer_of(event: dict[str, Any]) -> str | None:
    """The WhatsApp id an event's object carries in our metadata, whatever the event type
    (also for events that trigger nothing): the store files the event under it."""
    obj = _dict(_dict(event.get("data")).get("object"))
    for metadata in (_dict(obj.get("metadata")), subscription_metadata(obj)):
        customer = metadata.get(CUSTOMER_KEY)
        if isinstance(customer, str) and customer:
            return customer
    return None


def _id_of(value: Any) -> str | None:
    """The id of a reference that may be expanded into its object (`payment_intent`)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def subscription_of(obj: dict[str, Any], kind: str) -> str | None:
    """The Subscription a subscription or invoice event is about (an invoice names it under
    `parent` in newer API versions)."""
    if kind.startswith("customer.subscription."):
        return _id_of(obj.get("id"))
    details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    return _id_of(details.get("subscription")) or _id_of(obj.get("subscription"))


def ending_at(subscription: dict[str, Any]) -> int | None:
    """When a subscription cancelled at the end of its period ends: its `cancel_at`, else
    the end of the period it is paid for (on its items in newer API versions)."""
    items = _dict(subscription.get("items")).get("data")
    first = _dict(items[0]) if isinstance(items, list) and items else {}
    for value in (
        subscription.get("cancel_at"),
        subscription.get("current_period_end"),
        first.get("current_period_end"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def is_ending(subscription: dict[str, Any]) -> bool:
    """True for a subscription set to end: `cancel_at_period_end` (classic billing mode) or
    `cancel_at` (flexible billing mode's portal cancel sets it to the period end and leaves
    the flag false), and not already canceled."""
    if subscription.get("status") == "canceled":
        return False
    return (
        subscription.get("cancel_at_period_end") is True
        or subscription.get("cancel_at") is not None
    )


def _cancellation_changed(previous: dict[str, Any]) -> bool:
    return "cancel_at_period_end" in previous or "cancel_at" in previous


# What a subscriber changes (in the customer portal, or the shop for them) besides the
# cancellation and the plan: a new card, a pause.
_CUSTOMER_CHANGES = ("default_payment_method", "default_source", "pause_collection")


def _updated(
    obj: dict[str, Any], metadata: dict[str, Any], previous: dict[str, Any]
) -> EventIntent | Skipped:
    """customer.subscription.updated: ENDING only when this update set the cancellation,
    RENEWING when it switched a cancellation off, UPDATED for a new card, plan or pause.
    Stripe sends the event for much else the customer is told otherwise or not at all: each
    new billing period (its invoice's events tell the renewal), a status the invoice events
    explain, the cancellation survey's second event: skipped."""
    if _cancellation_changed(previous) and is_ending(obj):
        mapped = _intent({}, metadata, SUBSCRIPTION_ENDING)
        ends_at = ending_at(obj)
        if isinstance(mapped, EventIntent) and ends_at is not None:
            mapped = replace(mapped, entities={**mapped.entities, SUBSCRIPTION_ENDS_AT: ends_at})
        return mapped
    if _cancellation_changed(previous) and is_ending(previous):
        return _intent({}, metadata, SUBSCRIPTION_RENEWING)
    if any(key in previous for key in _CUSTOMER_CHANGES) or _plan_changed(obj, previous):
        return _intent({}, metadata, SUBSCRIPTION_UPDATED)
    return Skipped("routine_subscription_update")


def _plan_changed(obj: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether the update changed what is subscribed to: an item's price or quantity, an
    item added or removed (or, in older API versions, `plan`/`quantity`). A new billing
    period changes `items` too (newer API versions keep the period on each item), but
    only their periods."""
    if "plan" in previous or "quantity" in previous:
        return True
    before = _dict(previous.get("items")).get("data")
    if not isinstance(before, list):
        return False
    listed = _dict(obj.get("items")).get("data")
    now = {_dict(item).get("id"): _dict(item) for item in listed or []}
    if len(before) != len(now):
        return True
    for item in map(_dict, before):
        current = now.get(item.get("id"))
        if current is None:
            return True
        for key in ("price", "plan", "quantity"):
            if key in item and _ref(item[key]) != _ref(current.get(key)):
                return True
    return False


def _ref(value: Any) -> Any:
    """An expandable field's id (`price`, `plan`), else the value itself."""
    return value.get("id") if isinstance(value, dict) else value


def _with_subscription(
    mapped: EventIntent | Skipped, subscription: str | None
) -> EventIntent | Skipped:
    if isinstance(mapped, EventIntent) and subscription:
        return replace(mapped, entities={**mapped.entities, SUBSCRIPTION_ID: subscription})
    return mapped


def _intent(
    obj: dict[str, Any],
    metadata: dict[str, Any],
    intent: str,
    session: bool = False,
    fulfil: bool = False,
    fields: tuple[str, ...] = (),
) -> EventIntent | Skipped:
    customer = metadata.get(CUSTOMER_KEY)
    if not isinstance(customer, str) or not customer:
        return Skipped("missing_metadata")
    entities: dict[str, Any] = {}
    if isinstance(metadata.get(ORDER_ID_KEY), str):
        entities[ORDER_ID] = metadata[ORDER_ID_KEY]
    if session:
        entities[CHECKOUT_SESSION_ID] = obj.get("id")
    for key in fields:
        if obj.get(key) is not None:
            entities[key] = obj[key]
    payment_intent = _id_of(obj.get("payment_intent"))
    if payment_intent:
        entities[PAYMENT_INTENT] = payment_intent
    fulfilment_key = str(obj.get("id")) if fulfil and obj.get("id") else None
    return EventIntent(customer, intent, entities, fulfilment_key)


def recovery_url_of(session: dict[str, Any]) -> str | None:
    """An expired session's recovery URL (`after_expiration.recovery.url`), when Stripe made
    one (the session asked for recovery) and it is https (plain http only on the sandbox's
    loopback host: shop_contract.links)."""
    recovery = _dict(_dict(session.get("after_expiration")).get("recovery"))
    url = recovery.get("url")
    return url if is_customer_link(url) else None


def _with_recovery_url(
    mapped: EventIntent | Skipped, session: dict[str, Any]
) -> EventIntent | Skipped:
    url = recovery_url_of(session)
    if isinstance(mapped, EventIntent) and url:
        return replace(mapped, entities={**mapped.entities, RECOVERY_URL: url})
    return mapped


def _session_intent(
    obj: dict[str, Any], metadata: dict[str, Any], intent: str, fulfil: bool = False
) -> EventIntent | Skipped:
    return _intent(obj, metadata, intent, session=True, fulfil=fulfil, fields=_SESSION_FIELDS)


def is_paid_session_event(event: dict[str, Any]) -> bool:
    """An event saying a Checkout Session was paid: one the customer must hear about."""
    kind = event.get("type")
    obj = _dict(_dict(event.get("data")).get("object"))
    return kind == "checkout.session.async_payment_succeeded" or (
        kind == "checkout.session.completed" and obj.get("payment_status") in PAID_STATUSES
    )


def payment_intent_of(event: dict[str, Any]) -> str | None:
    """The PaymentIntent an event's object names (a charge's, a session's), else None."""
    return _id_of(_dict(_dict(event.get("data")).get("object")).get("payment_intent"))


def recovered_from_of(event: dict[str, Any]) -> str | None:
    """The expired session a Checkout Session event's session was recovered from (Stripe's
    `recovered_from`, set on the copy its recovery URL opened), else None."""
    if not str(event.get("type") or "").startswith("checkout.session."):
        return None
    return _id_of(_dict(_dict(event.get("data")).get("object")).get("recovered_from"))


def recovery_record(mapped: EventIntent | Skipped) -> tuple[str, str] | None:
    """(session id, order id) to record with an expiry whose session has a recovery URL:
    what a paid copy that lost our metadata is traced back through (`map_recovered`)."""
    if not isinstance(mapped, EventIntent) or mapped.intent != CHECKOUT_EXPIRED:
        return None
    session_id, order_id = mapped.entities.get(CHECKOUT_SESSION_ID), mapped.entities.get(ORDER_ID)
    if RECOVERY_URL not in mapped.entities or not isinstance(order_id, str):
        return None
    return (session_id, order_id) if isinstance(session_id, str) else None


def map_recovered(event: dict[str, Any], customer_id: str, order_id: str) -> EventIntent | Skipped:
    """`map_event` for an event of a recovered copy without our metadata, with the customer
    and order recorded for the session it was recovered from. The order id is only where to
    look: the action confirms nothing unless Stripe says the copy was recovered from a
    session that order had (actions/payments/verification.py)."""
    data = _dict(event.get("data"))
    obj = _dict(data.get("object"))
    metadata = {**_dict(obj.get("metadata")), CUSTOMER_KEY: customer_id, ORDER_ID_KEY: order_id}
    return map_event({**event, "data": {**data, "object": {**obj, "metadata": metadata}}})


def map_event(event: dict[str, Any]) -> EventIntent | Skipped:
    """The intent an event triggers (naming the event), or why it triggers none."""
    mapped = _map(event)
    event_id = event.get("id")
    if isinstance(mapped, EventIntent) and isinstance(event_id, str):
        return replace(mapped, entities={**mapped.entities, STRIPE_EVENT_ID: event_id})
    return mapped


def _map(event: dict[str, Any]) -> EventIntent | Skipped:
    kind = str(event.get("type") or "")
    obj = _dict(_dict(event.get("data")).get("object"))
    if "livemode" in event and "livemode" not in obj:
        obj = {**obj, "livemode": event["livemode"]}
    metadata = _dict(obj.get("metadata"))
    if kind == "checkout.session.completed":
        if obj.get("payment_status") in PAID_STATUSES:
            paid = _session_intent(obj, metadata, PAYMENT_SUCCEEDED, fulfil=True)
            return _with_subscription(paid, _id_of(obj.get("subscription")))
        return _session_intent(obj, metadata, PAYMENT_PROCESSING)
    if kind == "checkout.session.async_payment_succeeded":
        paid = _session_intent(obj, metadata, PAYMENT_SUCCEEDED, fulfil=True)
        return _with_subscription(paid, _id_of(obj.get("subscription")))
    if kind == "checkout.session.async_payment_failed":
        return _session_intent(obj, metadata, PAYMENT_FAILED)
    if kind == "checkout.session.expired":
        return _with_recovery_url(_session_intent(obj, metadata, CHECKOUT_EXPIRED), obj)
    if kind == "payment_intent.payment_failed":
        return _intent({}, metadata, PAYMENT_FAILED)
    if kind == "charge.refunded":
        return _intent(obj, metadata, REFUNDED, fields=_CHARGE_FIELDS)
    if kind in ("invoice.paid", "invoice.payment_failed"):
        if obj.get("billing_reason") == "subscription_create":
            return Skipped("first_invoice")  # the Checkout Session events cover it
        intent = SUBSCRIPTION_RENEWED if kind == "invoice.paid" else SUBSCRIPTION_RENEWAL_FAILED
        mapped = _intent({}, subscription_metadata(obj), intent)
        return _with_subscription(mapped, subscription_of(obj, kind))
    if kind == "customer.subscription.updated":
        previous = _dict(_dict(event.get("data")).get("previous_attributes"))
        return _with_subscription(_updated(obj, metadata, previous), subscription_of(obj, kind))
    if kind == "customer.subscription.deleted":
        mapped = _intent({}, metadata, SUBSCRIPTION_CANCELLED)
        return _with_subscription(mapped, subscription_of(obj, kind))
    return Skipped("unhandled_type")
