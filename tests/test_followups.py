"""The follow-up of an expired payment link, rule by rule: Stripe's recovery link or a fresh
link, once per order, only for the order's current link, never after the customer said stop;
and the opt-out and opt-in themselves. Actions run as the action server runs them, against
the Stripe emulator on loopback where a fresh link is made."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions.followup_actions import (
    FOLLOWUP_SENT_SLOT,
    OPT_OUT_HINT,
    OPT_OUT_SLOT,
    ActionCheckoutExpired,
    ActionResumeReminders,
    ActionStopReminders,
)
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from shop_contract.intents import SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING, SUBSCRIPTION_RENEWING
from tests.conftest import make_tracker, run_action, slot_updates
from tests.support.stripe_checkout import (
    awaiting_order,
    clear_payment_caches,
    creates,
    run_stripe_action,
)

RECOVERY = "https://pay.example/recover/cs_test_1"


def expiry(order: Order, slots: dict[str, Any] | None = None, **entities: Any) -> Tracker:
    """EXTERNAL_checkout_expired for the order's current session, as the connector makes it
    from checkout.session.expired (with the recovery URL Stripe put there)."""
    return make_tracker(
        "EXTERNAL_checkout_expired",
        {
            "order_id": order.id,
            "checkout_session_id": order.checkout_session_id,
            "recovery_url": RECOVERY,
            **entities,
        },
        slots={**order.to_slots(), **(slots or {})},
        channel="whatsapp",
    )


def test_the_recovery_link_goes_as_a_button_with_how_to_opt_out(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    messages, events = run_stripe_action(ActionCheckoutExpired(), expiry(order))
    (message,) = messages
    interactive = message["custom"]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["parameters"] == {
        "display_text": "Complete payment",
        "url": RECOVERY,
    }
    body = interactive["body"]["text"]
    assert f"order {order.id} expired" in body and body.endswith(OPT_OUT_HINT)
    assert "Total: €25.80" in body
    updated = slot_updates(events)
    assert (updated["order_status"], updated["order_followed_up"]) == ("expired", True)
    assert (updated["order_recovery_sent"], updated[FOLLOWUP_SENT_SLOT]) == (True, True)
    assert len(creates(stripe_env)) == 1  # Stripe's copy is the link: no session made here


def test_without_recovery_a_fresh_link_goes_once_with_how_to_opt_out(
    stripe_env: StripeEmulator, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_RECOVERY", "false")
    clear_payment_caches()
    order = awaiting_order(stripe_env, catalog)
    stripe_env.expire(str(order.checkout_session_id))
    messages, events = run_stripe_action(ActionCheckoutExpired(), expiry(order))
    (message,) = messages
    parameters = message["custom"]["interactive"]["action"]["parameters"]
    slots = {**order.to_slots(), **slot_updates(events)}
    assert parameters["url"] == slots["payment_link"] != RECOVERY
    assert message["custom"]["interactive"]["body"]["text"].endswith(OPT_OUT_HINT)
    assert (slots["order_status"], slots["order_followed_up"]) == ("awaiting_payment", True)
    assert (slots["order_recovery_sent"], slots[FOLLOWUP_SENT_SLOT]) == (False, True)

    # The fresh link expires unpaid too: the order is followed up once, so nothing now.
    fresh = Order.from_slots(slots)
    assert fresh is not None
    stripe_env.expire(str(fresh.checkout_session_id))
    again, events = run_stripe_action(ActionCheckoutExpired(), expiry(fresh))
    assert again == [] and slot_updates(events)["order_status"] == "expired"
    assert slot_updates(events)[FOLLOWUP_SENT_SLOT] is False  # silent: "no" is just no
    assert len(creates(stripe_env)) == 2  # no third session either


def test_an_order_followed_up_already_is_only_marked_expired(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_test_1", "https://pay/1")
    followed = order.moved_to(OrderStatus.AWAITING_PAYMENT, followed_up=True)
    messages, events = run_action(ActionCheckoutExpired(), expiry(followed))
    assert messages == [] and slot_updates(events)["order_status"] == "expired"
    assert slot_updates(events)[FOLLOWUP_SENT_SLOT] is False


def test_a_customer_who_opted_out_gets_nothing(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_test_1", "https://pay/1")
    messages, events = run_action(ActionCheckoutExpired(), expiry(order, {OPT_OUT_SLOT: True}))
    assert messages == []
    updated = slot_updates(events)
    assert (updated["order_status"], updated["order_followed_up"]) == ("expired", False)
    assert updated[FOLLOWUP_SENT_SLOT] is False


def test_no_follow_up_while_a_person_has_the_conversation(catalog: Catalog) -> None:
    # The customer's replies go to the shop then: the "reply STOP" would never reach the bot.
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_test_1", "https://pay/1")
    messages, events = run_action(ActionCheckoutExpired(), expiry(order, handed_over=True))
    assert messages == []
    updated = slot_updates(events)
    assert (updated["order_status"], updated["order_followed_up"]) == ("expired", False)
    assert updated[FOLLOWUP_SENT_SLOT] is False  # and a "no" to the person is no opt-out


def test_a_person_once_asked_for_does_not_silence_the_follow_up(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    """The `handover` slot stays set where no hand-over opened (the shop has no inbox, or
    another channel): only the connector's "a person has it now" silences the follow-up."""
    order = awaiting_order(stripe_env, catalog)
    messages, _ = run_stripe_action(ActionCheckoutExpired(), expiry(order, {"handover": "asked"}))
    (message,) = messages
    assert message["custom"]["interactive"]["type"] == "cta_url"


def test_an_older_link_or_a_paid_or_expired_order_gets_nothing(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_test_2", "https://pay/2")
    old_session = expiry(order, checkout_session_id="cs_test_1")
    silent: tuple[list[Any], list[Any]] = ([], [SlotSet(FOLLOWUP_SENT_SLOT, False)])  # "no" is no
    assert run_action(ActionCheckoutExpired(), old_session) == silent
    paid = order.paid_by("cs_test_2", "pi_test_1")
    assert run_action(ActionCheckoutExpired(), expiry(paid)) == silent
    expired = order.moved_to(OrderStatus.EXPIRED)
    assert run_action(ActionCheckoutExpired(), expiry(expired)) == silent  # told twice
    cancelled = order.moved_to(OrderStatus.CANCELLED)
    assert run_action(ActionCheckoutExpired(), expiry(cancelled)) == silent


def test_followed_up_survives_the_orders_records(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_test_1", "https://pay/1")
    followed = order.moved_to(OrderStatus.EXPIRED, followed_up=True)
    assert Order.from_slots(followed.to_slots()) == followed
    assert followed.next_attempt(0.0).with_link("cs_test_2", "u").followed_up


def test_stop_remembers_the_opt_out_and_says_how_to_undo_it() -> None:
    messages, events = run_action(ActionStopReminders(), make_tracker("stop_reminders"))
    assert slot_updates(events) == {OPT_OUT_SLOT: True, FOLLOWUP_SENT_SLOT: False}
    assert "won't send you any more payment reminders" in messages[0]["text"]
    assert "remind me again" in messages[0]["text"]
    assert "subscription" not in messages[0]["text"]  # the customer holds none


def subscriber(catalog: Catalog, *news: str) -> Tracker:
    """'stop …' from a customer whose Coffee Club order is paid, after these subscription
    events of theirs (as the connector triggers them from Stripe's)."""
    club = Order.start(catalog, {"coffee-club": 1}).with_link("cs_test_1", "https://pay/1")
    paid = club.paid_by("cs_test_1", None, subscription="sub_test_1")
    tracker = make_tracker("stop_reminders", slots=paid.to_slots(), channel="whatsapp")
    about = [{"entity": "order_id", "value": paid.id}]
    told = [
        {"event": "user", "parse_data": {"intent": {"name": intent}, "entities": about}}
        for intent in news
    ]
    tracker.events = [*told, *tracker.events]
    return tracker


def test_stop_from_a_subscriber_says_the_subscription_goes_on_and_how_to_cancel(
    catalog: Catalog,
) -> None:
    # "stop charging me" must not read as if it stopped the subscription's payments.
    (message,), events = run_action(ActionStopReminders(), subscriber(catalog))
    assert slot_updates(events) == {OPT_OUT_SLOT: True, FOLLOWUP_SENT_SLOT: False}
    assert "won't send you any more payment reminders" in message["text"]
    assert "This does not stop your Coffee Club Monthly subscription" in message["text"]
    assert 'To end it, say "cancel my subscription"' in message["text"]
    assert message["buttons"] == [{"title": "End subscription", "payload": "/subscription_cancel"}]
    renewing_again = subscriber(catalog, SUBSCRIPTION_ENDING, SUBSCRIPTION_RENEWING)
    (message,), _ = run_action(ActionStopReminders(), renewing_again)
    assert "does not stop your Coffee Club Monthly subscription" in message["text"]


def test_stop_after_the_subscription_was_cancelled_says_nothing_of_it(catalog: Catalog) -> None:
    for news in (SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING):
        (message,), _ = run_action(ActionStopReminders(), subscriber(catalog, news))
        assert "subscription" not in message["text"] and not message["buttons"]


def test_remind_me_again_undoes_it() -> None:
    tracker = make_tracker("resume_reminders", slots={OPT_OUT_SLOT: True})
    messages, events = run_action(ActionResumeReminders(), tracker)
    assert slot_updates(events) == {OPT_OUT_SLOT: False}
    text = messages[0]["text"]
    assert "STOP" in text
    # "remind me later" lands here too: no reminder at a time of the customer's choosing
    # exists, and the reply says what does.
    assert "I don't set reminders for a time you pick" in text
    assert "one message with a way to finish paying" in text


def test_a_recovery_url_over_plain_http_is_not_sent(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.expire(str(order.checkout_session_id))
    plain = expiry(order, recovery_url="http://pay.example/recover/cs_test_1")
    messages, events = run_stripe_action(ActionCheckoutExpired(), plain)
    (message,) = messages
    url = message["custom"]["interactive"]["action"]["parameters"]["url"]
    assert url.startswith(stripe_env.base_url + "/pay/")  # a fresh link of our own instead
    assert slot_updates(events)["order_recovery_sent"] is False
