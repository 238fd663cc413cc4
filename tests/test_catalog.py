from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shop_contract.catalog import DEFAULT_CATALOG_PATH, CatalogError, load_catalog, parse_catalog


def raw_catalog() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(document)


def test_shop_catalog_loads_with_products_and_a_subscription() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 5
    subscriptions = [p for p in catalog if p.is_subscription]
    assert subscriptions and all(p.interval for p in subscriptions)
    assert {p.currency for p in catalog} == {catalog.currency}
    assert any(not p.shipping for p in catalog) and any(p.shipping for p in catalog)


def test_find_matches_id_name_and_synonyms_in_any_case() -> None:
    catalog = load_catalog()
    assert catalog.find("Espresso Beans") == catalog.get("espresso-beans")
    assert catalog.find("  DARK   roast ") == catalog.get("espresso-beans")
    assert catalog.find("decaf-beans") == catalog.get("decaf-beans")
    assert catalog.find("a pony") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("unit_amount", 0, "unit_amount must be a positive amount"),
        ("unit_amount", "12.90", "'unit_amount' must be int"),
        ("unit_amount", True, "'unit_amount' must be int"),
        ("mode", "rental", "mode must be one of payment, subscription"),
        ("stripe_price", "prod_123", "stripe_price must be a Stripe Price id"),
        ("currency", "EUR", "currency must be a lower-case ISO 4217 code"),
        ("max_quantity", 0, "max_quantity must be between 1 and 99"),
        ("shipping", "yes", "'shipping' must be bool"),
        ("id", "Espresso Beans", "id must be lower-case letters"),
        ("synonyms", "espresso", "synonyms must be a list of strings"),
        ("interval", "month", "interval is only for subscriptions"),
    ],
)
def test_invalid_product_field_is_named(field: str, value: Any, message: str) -> None:
    document = raw_catalog()
    document["products"][0][field] = value
    with pytest.raises(CatalogError, match=message):
        parse_catalog(document)


def test_missing_field_is_named() -> None:
    document = raw_catalog()
    del document["products"][1]["name"]
    with pytest.raises(CatalogError, match="product 'filter-coffee': missing field 'name'"):
        parse_catalog(document)


def test_subscription_needs_an_interval() -> None:
    document = raw_catalog()
    subscription = next(p for p in document["products"] if p["mode"] == "subscription")
    del subscription["interval"]
    with pytest.raises(CatalogError, match="a subscription needs interval"):
        parse_catalog(document)


def test_duplicate_ids_and_shared_names_are_refused() -> None:
    document = raw_catalog()
    document["products"][1]["id"] = document["products"][0]["id"]
    with pytest.raises(CatalogError, match="duplicate product id 'espresso-beans'"):
        parse_catalog(document)
    document = raw_catalog()
    document["products"][1]["synonyms"].append("espresso")
    with pytest.raises(CatalogError, match="'espresso' names both"):
        parse_catalog(document)


def test_mixed_currencies_are_refused() -> None:
    document = raw_catalog()
    document["products"][0]["currency"] = "usd"
    with pytest.raises(CatalogError, match="share one currency"):
        parse_catalog(document)


@pytest.mark.parametrize("value", [0, 21, "5", True])
def test_max_lines_per_order_must_be_1_to_20(value: Any) -> None:
    document = raw_catalog()
    document["max_lines_per_order"] = value
    with pytest.raises(CatalogError, match="max_lines_per_order must be a whole number from 1"):
        parse_catalog(document)


def test_max_lines_per_order_is_read_and_defaults_to_10() -> None:
    assert load_catalog().max_lines == raw_catalog()["max_lines_per_order"]
    document = raw_catalog()
    del document["max_lines_per_order"]
    assert parse_catalog(document).max_lines == 10


@pytest.mark.parametrize("document", [None, [], {"products": []}, {"items": []}])
def test_malformed_documents_are_refused(document: Any) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(document)


def test_unreadable_and_invalid_files_say_which(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("products: [\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(broken)


def test_retailer_ids_map_products_to_the_meta_catalog() -> None:
    catalog = load_catalog()
    assert catalog.by_retailer_id("BL-ESP-250") == catalog.get("espresso-beans")
    assert catalog.by_retailer_id("espresso-beans") is None
    assert catalog.get("coffee-club") not in catalog.in_meta_catalog  # optional field
    assert [p.section for p in catalog.in_meta_catalog][:2] == ["Coffee", "Coffee"]
    document = raw_catalog()
    del document["products"][0]["section"]
    assert parse_catalog(document).products[0].section == "Products"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("retailer_id", "", "retailer_id must be the item's content id"),
        ("retailer_id", " BL-1", "retailer_id must be the item's content id"),
        ("retailer_id", "x" * 101, "retailer_id must be the item's content id"),
        ("retailer_id", 12, "retailer_id must be the item's content id"),
        ("section", "", "section must be a title of 1-24 characters"),
        ("section", "A section title too long!", "section must be a title of 1-24"),
    ],
)
def test_invalid_meta_catalog_fields_are_named(field: str, value: Any, message: str) -> None:
    document = raw_catalog()
    document["products"][0][field] = value
    with pytest.raises(CatalogError, match=f"product 'espresso-beans': {message}"):
        parse_catalog(document)


def test_a_retailer_id_given_to_two_products_is_refused() -> None:
    document = raw_catalog()
    document["products"][1]["retailer_id"] = document["products"][0]["retailer_id"]
    with pytest.raises(CatalogError, match="retailer_id 'BL-ESP-250' is given to two products"):
        parse_catalog(document)
