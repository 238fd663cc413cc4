from __future__ import annotations

import re

import pytest

from actions.orders.ids import new_order_id
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.orders.records import ORDERS_KEPT, cleared_order_slots, orders_in, with_order
from actions.orders.states import ALLOWED_MOVES, InvalidOrderMove, OrderStatus
from actions.payments.checkout_links import MIN_LINK_LIFETIME_SECONDS, usable_attempt
from shop_contract.catalog import Catalog


def test_order_totals_come_from_catalog_prices(catalog: Catalog) -> None:
    order = Order.start(catalog, {"espresso-beans": 2, "green-tea": 1})
    assert order.status is OrderStatus.DRAFT
    assert order.total == 2 * 1290 + 890
    assert order.currency == "eur"
    assert order.summary(catalog).splitlines() == [
        "2 × Espresso Beans — €25.80",
        "1 × Sencha Green Tea — €8.90",
        "Total: €34.70",
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({}, "at least one product"),
        ({"a-pony": 1}, "unknown product 'a-pony'"),
        ({"espresso-beans": 0}, "between 1 and 10"),
        ({"espresso-beans": 11}, "between 1 and 10"),
        ({"coffee-club": 2}, "between 1 and 1"),
    ],
)
def test_invalid_items_are_refused(catalog: Catalog, items: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Order.start(catalog, items)


def test_order_ids_are_short_readable_and_unique() -> None:
    ids = {new_order_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"ORD-[A-HJ-NP-Z2-9]{8}", i) for i in ids)


def test_slots_round_trip(catalog: Catalog) -> None:
    order = Order.start(
        catalog,
        {"pour-over-kit": 1},
        flow_token="tok",
        delivery={"name": "N", "street": "S", "postal_code": "P", "city": "C"},
    ).moved_to(OrderStatus.AWAITING_PAYMENT, checkout_session_id="cs_1", payment_link="https://x")
    slots = order.to_slots()
    assert slots["order_status"] == "awaiting_payment"
    assert slots["order_total"] == 3400
    assert Order.from_slots(slots) == order
    assert Order.from_slots(cleared_order_slots()) is None


def test_payment_can_never_be_undone_by_a_late_event(catalog: Catalog) -> None:
    paid = Order.start(catalog, {"espresso-beans": 1}).moved_to(OrderStatus.PAID)
    for late in (
        OrderStatus.EXPIRED,
        OrderStatus.PAYMENT_FAILED,
        OrderStatus.CANCELLED,
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.DRAFT,
    ):
        assert not paid.can_move_to(late)
        with pytest.raises(InvalidOrderMove, match=f"cannot move from paid to {late.value}"):
            paid.moved_to(late)
    assert paid.moved_to(OrderStatus.REFUNDED).status is OrderStatus.REFUNDED


def test_money_taken_confirms_any_unpaid_order() -> None:
    for status, moves in ALLOWED_MOVES.items():
        paid = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
        if status not in paid:
            assert OrderStatus.PAID in moves, status
        else:  # paid orders only move towards refunded, never back
            assert moves <= {OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}, status
    assert ALLOWED_MOVES[OrderStatus.REFUNDED] == frozenset()


def test_open_orders(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1})
    assert order.is_open
    assert order.moved_to(OrderStatus.AWAITING_PAYMENT).moved_to(OrderStatus.EXPIRED).is_open
    assert not order.can_move_to(OrderStatus.EXPIRED)  # a draft has no link to expire
    assert not order.moved_to(OrderStatus.CANCELLED).is_open
    assert not order.moved_to(OrderStatus.PAID).is_open


def test_orders_are_kept_by_id_newest_last_and_bounded(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_1", "https://pay/1")
    other = Order.start(catalog, {"decaf-beans": 2})
    held = with_order(with_order(None, order), other)
    held = with_order(held, order.paid_by("cs_1", "pi_1"))
    assert list(held) == [other.id, order.id]  # the one changed last is the newest
    assert orders_in(held)[order.id] == order.paid_by("cs_1", "pi_1")  # the record round-trips
    for _ in range(ORDERS_KEPT + 5):
        held = with_order(held, Order.start(catalog, {"gift-card": 1}))
    assert len(held) == ORDERS_KEPT and order.id not in held


def test_orders_finished_go_first_and_keep_no_address(catalog: Catalog) -> None:
    address = {"name": "A Customer", "street": "Main St 1", "postal_code": "1000", "city": "T"}
    paid = Order.start(catalog, {"gift-card": 1}, delivery=address).with_link("cs_1", "u")
    paid = paid.paid_by("cs_1", "pi_1")
    open_order = Order.start(catalog, {"gift-card": 1}, delivery=address).with_link("cs_2", "u")
    held = with_order(with_order(None, paid), open_order)
    cancelled = []
    for _ in range(ORDERS_KEPT + 3):
        order = Order.start(catalog, {"gift-card": 1}, delivery=address).with_link("cs_3", "u")
        cancelled.append(order.moved_to(OrderStatus.CANCELLED))
        held = with_order(held, cancelled[-1])
    assert len(held) == ORDERS_KEPT
    assert paid.id in held and open_order.id in held  # the oldest, yet kept
    assert [c.id for c in cancelled if c.id in held] == [c.id for c in cancelled[-18:]]
    assert held[paid.id]["order_delivery"] == address
    assert held[open_order.id]["order_delivery"] == address
    assert held[cancelled[-1].id]["order_delivery"] is None


def test_a_live_subscriptions_order_is_dropped_last(catalog: Catalog) -> None:
    club = Order.start(catalog, {"coffee-club": 1}).with_link("cs_s", "u")
    club = club.paid_by("cs_s", None, subscription="sub_1", customer="cus_1")
    held = with_order(None, club)
    for n in range(ORDERS_KEPT + 3):
        one_off = Order.start(catalog, {"gift-card": 1}).with_link(f"cs_{n}", "u")
        held = with_order(held, one_off.paid_by(f"cs_{n}", f"pi_{n}"))
    assert len(held) == ORDERS_KEPT and club.id in held  # the oldest, yet kept
    # Only when nothing but live subscriptions is left does the oldest of them go.
    subs = [club]
    for n in range(ORDERS_KEPT + 1):
        sub = Order.start(catalog, {"coffee-club": 1}).with_link(f"cs_t{n}", "u")
        subs.append(sub.paid_by(f"cs_t{n}", None, subscription=f"sub_t{n}"))
        held = with_order(held, subs[-1])
    assert list(held) == [sub.id for sub in subs[-ORDERS_KEPT:]]


def test_a_flow_orders_id_follows_from_its_token(catalog: Catalog) -> None:
    first = Order.start(catalog, {"gift-card": 1}, flow_token="ft1.token-a")
    again = Order.start(catalog, {"gift-card": 1}, flow_token="ft1.token-a")
    other = Order.start(catalog, {"gift-card": 1}, flow_token="ft1.token-b")
    assert first.id == again.id != other.id
    assert re.fullmatch(r"ORD-[A-HJ-NP-Z2-9]{8}", first.id)


def test_an_order_remembers_every_session_it_had(catalog: Catalog) -> None:
    first = Order.start(catalog, {"gift-card": 1}).with_link("cs_1", "https://pay/1")
    second = first.moved_to(OrderStatus.PAYMENT_FAILED).next_attempt(0.0)
    second = second.with_link("cs_2", "https://pay/2")
    assert (second.checkout_session_id, second.sessions) == ("cs_2", ("cs_1", "cs_2"))
    assert second.had_session("cs_1") and second.had_session("cs_2")
    assert not second.had_session("cs_other")
    assert second.awaits_payment and not second.is_paid


def test_paid_once_then_never_paid_again(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1}).with_link("cs_1", "https://pay/1")
    paid = order.moved_to(OrderStatus.CANCELLED).paid_by("cs_1", "pi_1")  # money is the truth
    assert (paid.status, paid.paid_session, paid.payment_intent) == (
        OrderStatus.PAID,
        "cs_1",
        "pi_1",
    )
    assert paid.is_paid and not paid.awaits_payment
    with pytest.raises(InvalidOrderMove):
        paid.paid_by("cs_2", "pi_2")


def test_refunds_add_up_to_partly_then_fully_refunded(catalog: Catalog) -> None:
    paid = Order.start(catalog, {"gift-card": 1}).paid_by("cs_1", "pi_1")  # €25.00
    part = paid.with_refunds(100, 2500)
    assert (part.status, part.refunded) == (OrderStatus.PARTIALLY_REFUNDED, 100)
    more = part.with_refunds(600, 2500)
    assert (more.status, more.refunded) == (OrderStatus.PARTIALLY_REFUNDED, 600)
    full = more.with_refunds(2500, 2500)
    assert (full.status, full.refunded) == (OrderStatus.REFUNDED, 2500)
    assert full.is_paid and not full.is_open
    with pytest.raises(InvalidOrderMove):
        full.with_refunds(2500, 2500)  # nothing moves a refunded order, backwards or not
    assert Order.from_slots(part.to_slots()) == part


def test_a_legacy_past_order_record_is_read(catalog: Catalog) -> None:
    record = {
        "order_id": "ORD-ABCDEFGH",
        "status": "paid",
        "items": [{"product": "gift-card", "quantity": 1, "unit_amount": 2500}],
        "total": 2500,
        "currency": "eur",
        "flow_token": "tok",
    }
    order = Order.from_legacy_record(record)
    assert (order.id, order.status, order.total, order.flow_token) == (
        "ORD-ABCDEFGH",
        OrderStatus.PAID,
        2500,
        "tok",
    )
    assert order.is_paid


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1290, "eur", "€12.90"),
        (5, "usd", "$0.05"),
        (123456, "gbp", "£1,234.56"),
        (1500, "chf", "15.00 CHF"),
        (500, "jpy", "500 JPY"),
    ],
)
def test_format_amount(amount: int, currency: str, text: str) -> None:
    assert format_amount(amount, currency) == text


def test_a_stale_attempt_becomes_the_next_one(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1})
    assert usable_attempt(order, now=order.attempt_at + 60) is order
    late = order.attempt_at + 60 * 60 - MIN_LINK_LIFETIME_SECONDS + 1  # default expiry: 60 min
    renewed = usable_attempt(order, now=late)
    assert (renewed.attempt, renewed.attempt_at) == (2, late)
    assert renewed.id == order.id and renewed.lines == order.lines
