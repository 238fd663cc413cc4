"""data/shop.yml is validated like the catalog: a broken fact stops start-up, named."""

from __future__ import annotations

import copy
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from shop_contract.shop import DEFAULT_SHOP_PATH, ShopError, load_shop, parse_shop


def raw_shop() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_SHOP_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(document)


def test_the_shop_file_loads() -> None:
    shop = load_shop()
    assert shop.name and shop.contact.email and shop.payment.accepted
    assert len(shop.hours.days) == 7 and any(shop.hours.days)
    assert shop.destinations and all(d.min_days <= d.max_days for d in shop.destinations)


def test_destinations_are_found_by_name_or_alias_in_any_case() -> None:
    shop = load_shop()
    first = shop.destinations[0]
    assert shop.destination(first.name.upper()) == first
    alias_holder = next(d for d in shop.destinations if d.aliases)
    assert shop.destination(f"  {alias_holder.aliases[0].lower()} ") == alias_holder
    assert shop.destination("Atlantis") is None


def test_open_now_and_the_next_opening_follow_the_shop_time_zone() -> None:
    document = raw_shop()
    hours = document["opening_hours"]
    hours.update({day: "closed" for day in ("saturday", "sunday")})
    hours.update({"time_zone": "Europe/Berlin", "friday": "09:00-18:00", "monday": "10:00-12:00"})
    opening = parse_shop(document).hours
    friday_17_berlin = datetime(2025, 1, 3, 16, 0, tzinfo=timezone.utc)  # 17:00 in Berlin (CET)
    assert opening.open_until(friday_17_berlin) == time(18, 0)
    friday_18_berlin = datetime(2025, 1, 3, 17, 0, tzinfo=timezone.utc)
    assert opening.open_until(friday_18_berlin) is None
    assert opening.next_opening(friday_18_berlin).isoformat() == "2025-01-06T10:00:00+01:00"
    monday_early = datetime(2025, 1, 6, 7, 0, tzinfo=timezone.utc)  # 08:00 in Berlin
    assert opening.next_opening(monday_early).isoformat() == "2025-01-06T10:00:00+01:00"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("name",), "", r"shop\.name: must be non-empty text"),
        (("opening_hours", "time_zone"), "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        (("opening_hours", "monday"), "9-18", r"opening_hours\.monday: must be \"HH:MM-HH:MM\""),
        (("opening_hours", "monday"), "25:00-26:00", "is not a time of day"),
        (("opening_hours", "tuesday"), "18:00-09:00", "opens at 18:00 but closes at 09:00"),
        (("delivery", 0, "cost"), -1, r"delivery 'Germany'\.cost: must be a whole number"),
        (("delivery", 0, "cost"), "4.90", r"delivery 'Germany'\.cost: must be a whole number"),
        (("delivery", 0, "cost"), True, r"delivery 'Germany'\.cost: must be a whole number"),
        (("delivery", 0, "days"), [3, 1], r"delivery 'Germany'\.days: must be \[fewest, most\]"),
        (("delivery", 0, "days"), 2, r"delivery 'Germany'\.days"),
        (("delivery", 0, "aliases"), "Deutschland", r"delivery 'Germany'\.aliases: must be a list"),
        (("delivery", 0, "free_from"), 0, r"delivery 'Germany'\.free_from"),
        (("delivery", 0, "code"), "de", r"delivery 'Germany'\.code: must be the country's two"),
        (("delivery", 0, "code"), "AT", r"delivery: code AT is both 'Germany' and 'Austria'"),
        (("payment", "accepted"), [], r"payment\.accepted: must name at least one"),
        (("payment", "not_accepted"), "PayPal", r"payment\.not_accepted: must be a list"),
        (("returns", "days"), 0, r"returns\.days: must be a whole number ≥ 1"),
        (("returns", "refund"), None, r"returns\.refund: must be non-empty text"),
        (("contact", "email"), "hello", r"contact\.email: 'hello' is not an e-mail address"),
        (("contact", "phone"), 4930123, r"contact\.phone: must be a quoted phone number"),
        (("contact", "whatsapp"), 4915123, r"contact\.whatsapp: must be the shop's WhatsApp"),
        (("contact", "whatsapp"), "0151 234567", r"contact\.whatsapp: .* international form"),
        (("subscriptions", "manage_url"), "http://x.example", r"manage_url: must be an https://"),
    ],
)
def test_an_invalid_fact_is_named(path: tuple[Any, ...], value: Any, message: str) -> None:
    document = raw_shop()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ShopError, match=message):
        parse_shop(document)


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        (None, "contact", "shop: missing field 'contact'"),
        ("returns", "faulty", "returns: missing field 'faulty'"),
        ("opening_hours", "sunday", "opening_hours: missing field 'sunday'"),
        ("payment", "accepted", "payment: missing field 'accepted'"),
    ],
)
def test_a_missing_fact_is_named(section: str | None, field: str, message: str) -> None:
    document = raw_shop()
    del (document[section] if section else document)[field]
    with pytest.raises(ShopError, match=message):
        parse_shop(document)


def test_an_unknown_field_is_refused_so_no_fact_goes_unanswered() -> None:
    document = raw_shop()
    document["contact"]["fax"] = "+49 30 1234568"
    with pytest.raises(ShopError, match=r"contact: unknown field 'fax' \(known: email, phone"):
        parse_shop(document)
    document = raw_shop()
    document["loyalty_points"] = True
    with pytest.raises(ShopError, match="shop: unknown field 'loyalty_points'"):
        parse_shop(document)


def test_a_shop_closed_every_day_and_a_name_used_twice_are_refused() -> None:
    document = raw_shop()
    document["opening_hours"].update(
        {day: "closed" for day in document["opening_hours"] if day != "time_zone"}
    )
    with pytest.raises(ShopError, match="every day is closed"):
        parse_shop(document)
    document = raw_shop()
    document["delivery"][1]["aliases"].append(document["delivery"][0]["name"].lower())
    with pytest.raises(ShopError, match="names both 'Germany' and"):
        parse_shop(document)


@pytest.mark.parametrize("document", [None, [], "shop", {"delivery": []}])
def test_malformed_documents_are_refused(document: Any) -> None:
    with pytest.raises(ShopError):
        parse_shop(document)


def test_unreadable_and_invalid_files_say_which(tmp_path: Path) -> None:
    with pytest.raises(ShopError, match="cannot read"):
        load_shop(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [\n", encoding="utf-8")
    with pytest.raises(ShopError, match="not valid YAML"):
        load_shop(broken)
