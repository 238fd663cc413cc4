"""Every fact in data/shop.yml reaches an answer, read back from the file itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from actions.orders.money import format_amount
from actions.shop_answers import (
    complaint_answer,
    contact_answer,
    delivery_answer,
    display_country,
    handover_answer,
    hours_answer,
    payment_answer,
    product_answer,
    returns_answer,
)
from shop_contract.catalog import Catalog
from shop_contract.shop import DEFAULT_SHOP_PATH, WEEKDAYS, Shop, load_shop, parse_shop

# A Wednesday, 10:00 in Berlin, and the same Wednesday at 20:00.
WEDNESDAY_MORNING = datetime(2025, 1, 8, 9, 0, tzinfo=timezone.utc)
WEDNESDAY_NIGHT = datetime(2025, 1, 8, 19, 0, tzinfo=timezone.utc)
# Every field the file may hold, indices as '*', and the test below that checks it.
CHECKED_FIELDS = {
    "name": "test_contact_and_hand_over_name_the_shop_and_every_way_to_reach_it",
    "opening_hours.time_zone": "test_opening_hours_give_every_day_in_the_shop_time_zone",
    **{
        f"opening_hours.{day}": "test_opening_hours_give_every_day_in_the_shop_time_zone"
        for day in WEEKDAYS
    },
    "delivery.*.name": "test_delivery_lists_every_destination_with_cost_and_time",
    "delivery.*.cost": "test_delivery_lists_every_destination_with_cost_and_time",
    "delivery.*.days.*": "test_delivery_lists_every_destination_with_cost_and_time",
    "delivery.*.free_from": "test_delivery_lists_every_destination_with_cost_and_time",
    "delivery.*.aliases.*": "test_delivery_to_a_named_country_answers_for_that_country",
    "payment.accepted.*": "test_payment_lists_what_is_taken_and_refuses_what_is_not",
    "payment.not_accepted.*": "test_payment_lists_what_is_taken_and_refuses_what_is_not",
    "returns.days": "test_returns_and_complaints_carry_the_whole_policy",
    "returns.conditions": "test_returns_and_complaints_carry_the_whole_policy",
    "returns.how": "test_returns_and_complaints_carry_the_whole_policy",
    "returns.refund": "test_returns_and_complaints_carry_the_whole_policy",
    "returns.faulty": "test_returns_and_complaints_carry_the_whole_policy",
    "contact.email": "test_contact_and_hand_over_name_the_shop_and_every_way_to_reach_it",
    "contact.phone": "test_contact_and_hand_over_name_the_shop_and_every_way_to_reach_it",
    "contact.address": "test_contact_and_hand_over_name_the_shop_and_every_way_to_reach_it",
    # contact.whatsapp: tests/test_subscription_portal.py (where the portal leads back)
    "contact.whatsapp": "test_subscription_portal.py",
    "subscriptions.cancellation": "test_a_subscription_answer_carries_the_cancellation_terms",
    # subscriptions.manage_url: tests/test_faq_actions.py (the subscription help's link)
    "subscriptions.manage_url": "test_faq_actions.py",
    # delivery.*.code: tests/test_checkout_links.py (the address Checkout accepts)
    "delivery.*.code": "test_checkout_links.py",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_SHOP_PATH.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def shop() -> Shop:
    return load_shop()


def fields(node: Any, path: str = "") -> Iterator[str]:
    """Every leaf of the document as a dotted path, list indices as '*'."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from fields(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for value in node:
            yield from fields(value, f"{path}.*")
    else:
        yield path


def money(amount: int, catalog: Catalog) -> str:
    return format_amount(amount, catalog.currency)


def test_every_field_in_the_file_is_checked_by_a_test_here(raw: dict[str, Any]) -> None:
    assert set(fields(raw)) <= set(CHECKED_FIELDS), set(fields(raw)) - set(CHECKED_FIELDS)
    names = {name for name in CHECKED_FIELDS.values() if name.startswith("test_")}
    elsewhere = {"test_faq_actions.py", "test_checkout_links.py", "test_subscription_portal.py"}
    assert names - elsewhere <= set(globals())


def test_delivery_lists_every_destination_with_cost_and_time(
    raw: dict[str, Any], shop: Shop, catalog: Catalog
) -> None:
    answer = delivery_answer(shop, catalog)
    for place in raw["delivery"]:
        low, high = place["days"]
        line = f"• {place['name']}: {money(place['cost'], catalog)}, {low}–{high} working days"
        if "free_from" in place:
            line += f"; free for orders from {money(place['free_from'], catalog)}"
        assert line in answer.splitlines()
    assert len(answer.splitlines()) == len(raw["delivery"]) + 3
    digital = [p.name for p in catalog if not p.shipping]
    assert all(name in answer for name in digital)


def test_delivery_to_a_named_country_answers_for_that_country(
    raw: dict[str, Any], shop: Shop, catalog: Catalog
) -> None:
    for place in raw["delivery"]:
        for name in [place["name"], *place["aliases"]]:
            answer = delivery_answer(shop, catalog, name.upper())
            assert answer.startswith(f"Yes, we deliver to {place['name']}: ")
            assert money(place["cost"], catalog) in answer
            others = [p["name"] for p in raw["delivery"] if p is not place]
            assert not any(other in answer for other in others)
    refused = delivery_answer(shop, catalog, "brazil")
    assert refused.startswith("Sorry, we don't deliver to Brazil. We deliver to ")
    assert all(place["name"] in refused for place in raw["delivery"])
    assert "€" not in refused


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("bosnia and herzegovina", "Bosnia and Herzegovina"),
        ("USA", "USA"),
        ("the States", "the States"),
    ],
)
def test_a_country_is_shown_as_typed_but_capitalised(typed: str, shown: str) -> None:
    assert display_country(typed) == shown


def test_opening_hours_give_every_day_in_the_shop_time_zone(
    raw: dict[str, Any], shop: Shop
) -> None:
    answer = hours_answer(shop, WEDNESDAY_MORNING).splitlines()
    city = raw["opening_hours"]["time_zone"].rsplit("/", 1)[-1].replace("_", " ")
    assert answer[0] == f"Our opening hours ({city} time):"
    read_back: dict[str, str] = {}
    for line in answer[1:-1]:
        match = re.fullmatch(r"(\w+)(?:–(\w+))?: (.+)", line)
        assert match, line
        first, last = (WEEKDAYS.index(d.lower()) for d in (match[1], match[2] or match[1]))
        for day in WEEKDAYS[first : last + 1]:
            read_back[day] = match[3].replace("–", "-")
    assert read_back == {day: raw["opening_hours"][day] for day in WEEKDAYS}


def test_open_now_or_when_the_shop_opens_again(raw: dict[str, Any]) -> None:
    raw = {**raw, "opening_hours": {**raw["opening_hours"], "wednesday": "09:00-18:00"}}
    raw["opening_hours"].update({"time_zone": "Europe/Berlin", "thursday": "09:00-18:00"})
    shop = parse_shop(raw)
    assert hours_answer(shop, WEDNESDAY_MORNING).endswith(
        "We're open now, until 18:00 (Berlin time)."
    )
    assert hours_answer(shop, WEDNESDAY_NIGHT).endswith(
        "We're closed now and open again tomorrow at 09:00 (Berlin time)."
    )
    raw["opening_hours"].update({"thursday": "closed", "friday": "08:30-12:00"})
    assert hours_answer(parse_shop(raw), WEDNESDAY_NIGHT).endswith(
        "open again on Friday at 08:30 (Berlin time)."
    )


def test_payment_lists_what_is_taken_and_refuses_what_is_not(
    raw: dict[str, Any], shop: Shop
) -> None:
    answer = payment_answer(shop, "how can I pay?")
    assert all(method in answer for method in raw["payment"]["accepted"])
    assert "don't take" not in answer and "Stripe" in answer
    for method in raw["payment"]["not_accepted"]:
        refused = payment_answer(shop, f"can i pay with {method.lower()}??")
        assert refused.startswith(f"Sorry, we don't take {method}. You can pay with ")
        assert all(m in refused for m in raw["payment"]["accepted"])
    accepted = raw["payment"]["accepted"][-1]
    assert "don't take" not in payment_answer(shop, f"do you take {accepted}")


def test_returns_and_complaints_carry_the_whole_policy(raw: dict[str, Any], shop: Shop) -> None:
    returns = raw["returns"]
    answer = returns_answer(shop)
    assert f"within {returns['days']} days of delivery" in answer
    for field in ("conditions", "how", "refund", "faulty"):
        assert returns[field] in answer
    complaint = complaint_answer(shop)
    assert complaint.startswith("I'm sorry")
    assert returns["faulty"] in complaint and f"{returns['days']} days" in complaint
    assert complaint.endswith("Would you like to talk to a person?")


def test_contact_and_hand_over_name_the_shop_and_every_way_to_reach_it(
    raw: dict[str, Any], shop: Shop
) -> None:
    contact = raw["contact"]
    answer = contact_answer(shop, WEDNESDAY_MORNING)
    assert raw["name"] in answer
    assert all(contact[field] in answer for field in ("email", "phone", "address"))
    handover = handover_answer(shop, WEDNESDAY_MORNING)
    assert raw["name"] in handover and contact["phone"] in handover
    assert contact["email"] in handover
    # Nothing tells the team yet: the text must not promise that someone will write back.
    assert not re.search(r"notif|will (contact|write|get back)|passed (you )?on", handover, re.I)


def test_a_subscription_answer_carries_the_cancellation_terms(
    raw: dict[str, Any], shop: Shop, catalog: Catalog
) -> None:
    (subscription,) = [p for p in catalog if p.is_subscription]
    answer = product_answer(subscription, shop)
    assert raw["subscriptions"]["cancellation"] in answer
    assert f"every {subscription.interval}" in answer


def test_a_product_answer_is_about_that_product_only(shop: Shop, catalog: Catalog) -> None:
    for product in catalog:
        answer = product_answer(product, shop)
        assert answer.startswith(f"{product.name}: {money(product.unit_amount, catalog)}")
        assert product.description in answer
        assert f"up to {product.max_quantity} per order" in answer
        assert not any(other.name in answer for other in catalog if other != product)
