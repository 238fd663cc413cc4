"""Stripe event mapping and signature verification (pure functions)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors.edge.signatures import stripe_signature, verify_stripe_signature
from connectors.stripe.events import (
    EventIntent,
    Skipped,
    customer_of,
    is_paid_session_event,
    map_event,
    map_recovered,
    recovered_from_of,
    recovery_record,
)
from connectors.stripe.webhook import outbox_origin
from sandbox import stripe_events as se

CUSTOMER = "15550005555"
META = {"whatsapp_user_id": CUSTOMER, "order_id": "ORD-ABCDEFGH"}


def mapped(kind: str, obj: dict[str, Any]) -> EventIntent | Skipped:
    return map_event(se.event(kind, obj))


def test_paid_checkout_confirms_the_session() -> None:
    obj = {**se.session("cs_1", CUSTOMER, "ORD-ABCDEFGH", 2580), "payment_intent": "pi_1"}
    event = se.event("checkout.session.completed", obj)
    assert map_event(event) == EventIntent(
        CUSTOMER,
        "EXTERNAL_payment_succeeded",
        {
            "order_id": "ORD-ABCDEFGH",
            "checkout_session_id": "cs_1",
            "amount_total": 2580,
            "currency": "eur",
            "livemode": False,
            "payment_intent": "pi_1",
            "stripe_event_id": event["id"],
        },
        "cs_1",
    )


def test_an_expanded_payment_intent_is_passed_by_its_id() -> None:
    obj = {**se.session("cs_1", CUSTOMER, "ORD-ABCDEFGH", 2580), "payment_intent": {"id": "pi_2"}}
    result = mapped("checkout.session.async_payment_succeeded", obj)
    assert isinstance(result, EventIntent) and result.entities["payment_intent"] == "pi_2"


def test_a_refund_carries_the_charge_amount_and_what_is_refunded_in_all() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 2580,
        "amount_refunded": 100,
        "refunded": False,
        "currency": "eur",
        "payment_intent": "pi_1",
        "metadata": META,
    }
    event = se.event("charge.refunded", charge)
    result = map_event(event)
    assert isinstance(result, EventIntent)
    assert result.entities == {
        "order_id": "ORD-ABCDEFGH",
        "amount": 2580,
        "amount_refunded": 100,
        "currency": "eur",
        "livemode": False,
        "payment_intent": "pi_1",
        "stripe_event_id": event["id"],
    }


def test_unpaid_completion_is_processing_and_claims_nothing() -> None:
    obj = se.session("cs_2", CUSTOMER, "ORD-1", 100, payment_status="unpaid")
    result = mapped("checkout.session.completed", obj)
    assert isinstance(result, EventIntent)
    assert result.intent == "EXTERNAL_payment_processing" and result.fulfilment_key is None


@pytest.mark.parametrize(
    ("kind", "intent", "claims"),
    [
        ("checkout.session.async_payment_succeeded", "EXTERNAL_payment_succeeded", True),
        ("checkout.session.async_payment_failed", "EXTERNAL_payment_failed", False),
        ("checkout.session.expired", "EXTERNAL_checkout_expired", False),
    ],
)
def test_session_events(kind: str, intent: str, claims: bool) -> None:
    result = mapped(kind, se.session("cs_3", CUSTOMER, "ORD-1", 100, payment_status="unpaid"))
    assert isinstance(result, EventIntent)
    assert result.intent == intent and result.entities["checkout_session_id"] == "cs_3"
    assert (result.fulfilment_key == "cs_3") is claims


def test_payment_intent_and_charge_events_use_their_own_metadata() -> None:
    failed = mapped(
        "payment_intent.payment_failed",
        {"id": "pi_1", "object": "payment_intent", "metadata": META},
    )
    refunded = mapped("charge.refunded", {"id": "ch_1", "object": "charge", "metadata": META})
    for result, intent in ((failed, "EXTERNAL_payment_failed"), (refunded, "EXTERNAL_refunded")):
        assert isinstance(result, EventIntent)
        assert (result.customer_id, result.intent, result.entities["order_id"]) == (
            CUSTOMER,
            intent,
            "ORD-ABCDEFGH",
        )
        assert result.fulfilment_key is None


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        (
            {
                "billing_reason": "subscription_cycle",
                "parent": {"subscription_details": {"metadata": META}},
            },
            "EXTERNAL_subscription_renewed",
        ),
        (
            {"billing_reason": "subscription_cycle", "subscription_details": {"metadata": META}},
            "EXTERNAL_subscription_renewed",
        ),
        (
            {
                "billing_reason": "subscription_create",
                "parent": {"subscription_details": {"metadata": META}},
            },
            "first_invoice",
        ),
    ],
)
def test_invoices(invoice: dict[str, Any], expected: str) -> None:
    result = mapped("invoice.paid", {"id": "in_1", "object": "invoice", **invoice})
    name = result.intent if isinstance(result, EventIntent) else result.reason
    assert name == expected
    failed = mapped("invoice.payment_failed", {"id": "in_2", "object": "invoice", **invoice})
    if isinstance(failed, EventIntent):
        assert failed.intent == "EXTERNAL_subscription_renewal_failed"


def test_subscription_events() -> None:
    subscription = {"id": "sub_1", "object": "subscription", "metadata": META}
    for result, intent in (
        (
            map_event(se.event(UPDATED, subscription, previous={"default_payment_method": "pm"})),
            "EXTERNAL_subscription_updated",
        ),
        (mapped("customer.subscription.deleted", subscription), "EXTERNAL_subscription_cancelled"),
    ):
        assert isinstance(result, EventIntent) and result.intent == intent
        assert result.entities["subscription_id"] == "sub_1"


def items(*lines: tuple[str, str, int], start: int = 1_790_000_000) -> dict[str, Any]:
    """A subscription's `items`: (item id, price id, quantity), billed from `start`."""
    return {
        "object": "list",
        "data": [
            {
                "id": item,
                "price": {"id": price, "object": "price"},
                "quantity": quantity,
                "current_period_start": start,
                "current_period_end": start + 30 * 86400,
            }
            for item, price, quantity in lines
        ],
    }


MONTH = 30 * 86400
ONE = ("si_1", "price_club", 1)


@pytest.mark.parametrize(
    ("now", "previous", "told"),
    [
        # A new billing period: the items' periods and the latest invoice change; the
        # renewal is told from invoice.paid.
        (
            {"items": items(ONE, start=1_790_000_000 + MONTH), "latest_invoice": "in_2"},
            {"items": items(ONE), "latest_invoice": "in_1"},
            False,
        ),
        # A failed renewal's status (told from invoice.payment_failed), and back.
        ({"status": "past_due"}, {"status": "active"}, False),
        ({"status": "active"}, {"status": "past_due"}, False),
        # The cancellation survey's answer after a cancellation already told.
        ({"cancel_at_period_end": True}, {"cancellation_details": {"feedback": None}}, False),
        ({}, {}, False),
        # What the subscriber changed: card, plan, quantity, an item more, a pause.
        ({"default_payment_method": "pm_new"}, {"default_payment_method": "pm_old"}, True),
        ({"items": items(("si_1", "price_big", 1))}, {"items": items(ONE)}, True),
        ({"items": items(("si_1", "price_club", 2))}, {"items": items(ONE)}, True),
        ({"items": items(ONE, ("si_2", "price_mug", 1))}, {"items": items(ONE)}, True),
        ({"plan": {"id": "price_big"}}, {"plan": {"id": "price_club"}}, True),
        ({"pause_collection": {"behavior": "void"}}, {"pause_collection": None}, True),
    ],
)
def test_only_an_update_the_subscriber_made_is_told(
    now: dict[str, Any], previous: dict[str, Any], told: bool
) -> None:
    """Stripe sends customer.subscription.updated for every new period and status too:
    telling each as "your subscription has been updated" doubled every renewal."""
    result = map_event(se.event(UPDATED, {**FLEX, **now}, previous=previous))
    if told:
        assert isinstance(result, EventIntent) and result.intent == "EXTERNAL_subscription_updated"
    else:
        assert result == Skipped("routine_subscription_update")


@pytest.mark.parametrize(
    ("fields", "ends_at"),
    [
        ({"cancel_at": 1798761600, "current_period_end": 1}, 1798761600),
        ({"items": {"data": [{"current_period_end": 1798761600}]}}, 1798761600),
        ({"current_period_end": 1798761600}, 1798761600),
        ({}, None),
    ],
)
def test_a_cancellation_at_period_end_is_its_own_intent_with_its_end(
    fields: dict[str, Any], ends_at: int | None
) -> None:
    subscription = {"id": "sub_1", "object": "subscription", "metadata": META, **fields}
    result = map_event(
        se.event(
            "customer.subscription.updated",
            {**subscription, "cancel_at_period_end": True},
            previous={"cancel_at_period_end": False},
        )
    )
    assert isinstance(result, EventIntent) and result.intent == "EXTERNAL_subscription_ending"
    assert result.entities.get("subscription_ends_at") == ends_at
    assert result.entities["subscription_id"] == "sub_1"


UPDATED = "customer.subscription.updated"
FLEX = {"id": "sub_1", "object": "subscription", "metadata": META, "status": "active"}


@pytest.mark.parametrize(
    ("fields", "previous", "intent"),
    [
        # Flexible billing mode: the portal's period-end cancel sets only cancel_at.
        (
            {"cancel_at_period_end": False, "cancel_at": 1798761600},
            {"cancel_at": None},
            "EXTERNAL_subscription_ending",
        ),
        # Classic mode sets both.
        (
            {"cancel_at_period_end": True, "cancel_at": 1798761600},
            {"cancel_at_period_end": False, "cancel_at": None},
            "EXTERNAL_subscription_ending",
        ),
        # A new card, or the cancellation survey's second event, on an ending subscription.
        (
            {"cancel_at_period_end": True, "cancel_at": 1798761600},
            {"default_payment_method": "pm_old"},
            "EXTERNAL_subscription_updated",
        ),
        (
            {"cancel_at_period_end": False, "cancel_at": 1798761600},
            {"cancellation_details": {"feedback": None}},
            "routine_subscription_update",
        ),
        ({"cancel_at_period_end": True}, {}, "routine_subscription_update"),
        # The cancellation switched off (classic and flexible): it renews again.
        (
            {"cancel_at_period_end": False, "cancel_at": None},
            {"cancel_at_period_end": True, "cancel_at": 1798761600},
            "EXTERNAL_subscription_renewing",
        ),
        (
            {"cancel_at_period_end": False, "cancel_at": None},
            {"cancel_at": 1798761600},
            "EXTERNAL_subscription_renewing",
        ),
        # Ended already: nothing is "ending" (customer.subscription.deleted tells it).
        (
            {"status": "canceled", "cancel_at": 1798761600},
            {"status": "active"},
            "routine_subscription_update",
        ),
    ],
)
def test_ending_is_announced_only_when_the_update_changed_the_cancellation(
    fields: dict[str, Any], previous: dict[str, Any], intent: str
) -> None:
    result = map_event(se.event(UPDATED, {**FLEX, **fields}, previous=previous))
    assert (result.intent if isinstance(result, EventIntent) else result.reason) == intent
    if intent == "EXTERNAL_subscription_ending":
        assert isinstance(result, EventIntent)
        assert result.entities["subscription_ends_at"] == 1798761600


def test_renewals_name_their_subscription() -> None:
    invoice = {
        "id": "in_3",
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "parent": {"subscription_details": {"metadata": META, "subscription": "sub_7"}},
    }
    result = mapped("invoice.paid", invoice)
    assert isinstance(result, EventIntent) and result.entities["subscription_id"] == "sub_7"


def test_unknown_types_and_missing_metadata_are_skipped() -> None:
    assert mapped("customer.created", {"id": "cus_1"}) == Skipped("unhandled_type")
    assert mapped(
        "checkout.session.completed", {"id": "cs_9", "payment_status": "paid"}
    ) == Skipped("missing_metadata")
    assert mapped("charge.refunded", {"id": "ch", "metadata": {"order_id": "x"}}) == Skipped(
        "missing_metadata"
    )
    assert map_event({"type": "checkout.session.completed", "data": "nonsense"}) == Skipped(
        "missing_metadata"
    )
    assert map_event({}) == Skipped("unhandled_type")


def test_signature_verification() -> None:
    now = int(time.time())
    body = b'{"id": "evt_1", "type": "checkout.session.completed"}'
    header = stripe_signature(body, "whsec_new", now)
    assert verify_stripe_signature(body, header, ["whsec_old", "whsec_new"], now)
    assert not verify_stripe_signature(body, header, ["whsec_old"], now)
    assert not verify_stripe_signature(body + b" ", header, ["whsec_new"], now)
    assert not verify_stripe_signature(body, header, ["whsec_new"], now + 301)  # stale
    assert not verify_stripe_signature(body, header, ["whsec_new"], now - 301)  # from the future
    assert verify_stripe_signature(body, header, ["whsec_new"], now + 299)
    assert not verify_stripe_signature(body, None, ["whsec_new"], now)
    assert not verify_stripe_signature(body, "", ["whsec_new"], now)
    assert not verify_stripe_signature(body, "v1=abc", ["whsec_new"], now)
    assert not verify_stripe_signature(body, f"t={now}", ["whsec_new"], now)
    assert not verify_stripe_signature(body, header, [], now)
    other = stripe_signature(body, "whsec_other", now).split(",")[1]
    assert verify_stripe_signature(body, f"{header},{other}", ["whsec_new"], now)
    assert verify_stripe_signature(
        body, f"t={now},{other},{header.split(',')[1]}", ["whsec_new"], now
    )
    assert not verify_stripe_signature(
        b"\xff\xfe", stripe_signature(b"x", "whsec_new", now), ["whsec_new"], now
    )


def test_every_event_with_our_metadata_names_its_customer_even_when_it_triggers_nothing() -> None:
    metadata = {"whatsapp_user_id": "15550600001", "order_id": "ORD-1"}
    first_invoice = se.event(
        "invoice.paid",
        {
            "id": "in_1",
            "object": "invoice",
            "billing_reason": "subscription_create",
            "parent": {"subscription_details": {"metadata": metadata}},
        },
    )
    assert isinstance(map_event(first_invoice), Skipped)
    assert customer_of(first_invoice) == "15550600001"
    assert customer_of(se.event("charge.dispute.created", {"metadata": metadata})) == "15550600001"
    assert customer_of(se.event("payout.paid", {"id": "po_1"})) is None


def expired_session(after_expiration: Any) -> dict[str, Any]:
    obj = se.session("cs_1", CUSTOMER, "ORD-ABCDEFGH", 2580, payment_status="unpaid")
    return {**obj, "status": "expired", "after_expiration": after_expiration}


def test_an_expiry_carries_the_recovery_url_when_stripe_made_one() -> None:
    url = "https://checkout.stripe.com/c/pay/recover_1"
    recovery = {"recovery": {"enabled": True, "url": url, "expires_at": 1}}
    found = mapped("checkout.session.expired", expired_session(recovery))
    assert isinstance(found, EventIntent) and found.intent == "EXTERNAL_checkout_expired"
    assert found.entities["recovery_url"] == url and found.entities["checkout_session_id"] == "cs_1"


@pytest.mark.parametrize(
    "after_expiration",
    [None, {"recovery": None}, {"recovery": {"enabled": True, "url": "javascript:alert(1)"}}],
)
def test_an_expiry_without_a_usable_recovery_url_carries_none(after_expiration: Any) -> None:
    found = mapped("checkout.session.expired", expired_session(after_expiration))
    assert isinstance(found, EventIntent) and "recovery_url" not in found.entities


def test_an_expirys_notifications_are_keyed_by_its_order_other_events_by_themselves() -> None:
    expired = mapped("checkout.session.expired", expired_session(None))
    paid = mapped("checkout.session.completed", se.session("cs_1", CUSTOMER, "ORD-ABCDEFGH", 1))
    assert isinstance(expired, EventIntent) and isinstance(paid, EventIntent)
    first, second = outbox_origin("evt_1", expired), outbox_origin("evt_2", expired)
    assert first == second and first.endswith(":ORD-ABCDEFGH") and CUSTOMER not in first
    assert outbox_origin("evt_3", paid) == "evt_3"


def test_an_expiry_with_a_recovery_url_is_recorded_by_session_and_order() -> None:
    recovery = {"recovery": {"enabled": True, "url": "https://checkout.stripe.com/r/1"}}
    with_url = mapped("checkout.session.expired", expired_session(recovery))
    assert recovery_record(with_url) == ("cs_1", "ORD-ABCDEFGH")
    assert recovery_record(mapped("checkout.session.expired", expired_session(None))) is None
    paid = mapped("checkout.session.completed", se.session("cs_1", CUSTOMER, "ORD-ABCDEFGH", 1))
    assert recovery_record(paid) is None


def test_a_recovered_copy_without_metadata_maps_through_what_was_recorded() -> None:
    copy = {**se.session("cs_copy", CUSTOMER, "ORD-ABCDEFGH", 2580), "metadata": {}}
    copy["recovered_from"] = "cs_1"
    event = se.event("checkout.session.completed", copy)
    assert map_event(event) == Skipped("missing_metadata")
    assert recovered_from_of(event) == "cs_1" and is_paid_session_event(event)
    found = map_recovered(event, CUSTOMER, "ORD-ABCDEFGH")
    assert isinstance(found, EventIntent) and found.customer_id == CUSTOMER
    assert found.intent == "EXTERNAL_payment_succeeded" and found.fulfilment_key == "cs_copy"
    assert found.entities["order_id"] == "ORD-ABCDEFGH"
    assert found.entities["checkout_session_id"] == "cs_copy"
    assert event["data"]["object"]["metadata"] == {}  # the recorded event stays as Stripe sent it
    unpaid = se.event("checkout.session.expired", {**copy, "payment_status": "unpaid"})
    assert not is_paid_session_event(unpaid)
    assert recovered_from_of(se.event("charge.refunded", copy)) is None


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://checkout.stripe.com/c/pay/recover_1", True),
        ("http://127.0.0.1:5082/recover/cs_test_1", True),  # the sandbox's emulator
        ("http://localhost:5082/recover/cs_test_1", True),
        ("http://checkout.stripe.com/c/pay/recover_1", False),  # not encrypted
        ("http://127.0.0.1.evil.example/recover", False),
        ("https://", False),
        ("https://checkout.stripe.com/c/pay/ recover", False),
    ],
)
def test_a_recovery_url_must_be_https_except_on_the_loopback_host(url: str, kept: bool) -> None:
    recovery = {"recovery": {"enabled": True, "url": url}}
    found = mapped("checkout.session.expired", expired_session(recovery))
    assert isinstance(found, EventIntent) and ("recovery_url" in found.entities) is kept
