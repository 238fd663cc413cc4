"""The Graph API's checks of the messages that show products from a Meta catalog, as pure
functions (Meta's limits written down here on their own, not imported from the product).

- `catalog_message`: body (1024) required, optional footer, no header; `action.name`
  `catalog_message`, optional `parameters.thumbnail_product_retailer_id`.
- `product`: optional body and footer, no header; `action.catalog_id`,
  `action.product_retailer_id`.
- `product_list`: a text header (60) and a body required; `action.catalog_id`; 1 to 10
  `sections`, each with a title (24) and at least one product, 30 products in all.
Every catalog id must be one connected to the account, and every retailer id an item of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sandbox.rule_basics import _dict, _require, _text

BODY_MAX = 1024
HEADER_FOOTER_MAX = 60
SECTIONS_MAX = 10
PRODUCTS_MAX = 30
SECTION_TITLE_MAX = 24
RETAILER_ID_MAX = 100
PRODUCT_NOT_FOUND = 131009  # Meta answers an unknown item with "Parameter value is not valid"

#: The retailer ids of a catalog id connected to the account, or None when it is not.
CatalogItems = Callable[[str], "frozenset[str] | None"]


def no_catalogs(catalog_id: str) -> frozenset[str] | None:
    """An account without a connected catalog."""
    return None


def _footer_and_no_header(interactive: Mapping[str, Any]) -> None:
    _require(
        "header" not in interactive,
        f"interactive.header is not allowed on a {interactive.get('type')} message",
    )
    if "footer" in interactive:
        footer = _dict(interactive["footer"], "interactive.footer")
        _text(footer.get("text"), "interactive.footer.text", HEADER_FOOTER_MAX)


def _body(interactive: Mapping[str, Any], required: bool) -> None:
    if "body" in interactive or required:
        body = _dict(interactive.get("body"), "interactive.body")
        _text(body.get("text"), "interactive.body.text", BODY_MAX)


def _items_of(catalogs: CatalogItems, action: Mapping[str, Any]) -> frozenset[str]:
    catalog_id = _text(action.get("catalog_id"), "interactive.action.catalog_id", 64)
    items = catalogs(catalog_id)
    _require(
        items is not None,
        f"interactive.action.catalog_id: catalog {catalog_id} is not connected to this account",
    )
    assert items is not None
    return items


def _known(items: frozenset[str], retailer_id: Any, where: str) -> None:
    found = _text(retailer_id, where, RETAILER_ID_MAX)
    _require(found in items, f"{where}: no product {found!r} in the catalog", PRODUCT_NOT_FOUND)


def check_catalog_message(interactive: Mapping[str, Any], catalogs: CatalogItems) -> None:
    _body(interactive, required=True)
    _footer_and_no_header(interactive)
    action = _dict(interactive.get("action"), "interactive.action")
    _require(
        action.get("name") == "catalog_message", "interactive.action.name must be catalog_message"
    )
    parameters = action.get("parameters")
    if parameters is not None:
        thumbnail = _dict(parameters, "interactive.action.parameters").get(
            "thumbnail_product_retailer_id"
        )
        if thumbnail is not None:
            _text(thumbnail, "parameters.thumbnail_product_retailer_id", RETAILER_ID_MAX)


def check_product(interactive: Mapping[str, Any], catalogs: CatalogItems) -> None:
    _body(interactive, required=False)
    _footer_and_no_header(interactive)
    action = _dict(interactive.get("action"), "interactive.action")
    items = _items_of(catalogs, action)
    _known(items, action.get("product_retailer_id"), "interactive.action.product_retailer_id")


def check_product_list(interactive: Mapping[str, Any], catalogs: CatalogItems) -> None:
    header = _dict(interactive.get("header"), "interactive.header")
    _require(header.get("type") == "text", "interactive.header.type must be text")
    _text(header.get("text"), "interactive.header.text", HEADER_FOOTER_MAX)
    _body(interactive, required=True)
    if "footer" in interactive:
        _text(
            _dict(interactive["footer"], "interactive.footer").get("text"),
            "interactive.footer.text",
            HEADER_FOOTER_MAX,
        )
    action = _dict(interactive.get("action"), "interactive.action")
    items = _items_of(catalogs, action)
    sections = action.get("sections")
    _require(
        isinstance(sections, list) and 1 <= len(sections) <= SECTIONS_MAX,
        f"interactive.action.sections must hold 1 to {SECTIONS_MAX} sections",
    )
    assert isinstance(sections, list)
    products = 0
    for index, section in enumerate(sections):
        where = f"interactive.action.sections[{index}]"
        _text(_dict(section, where).get("title"), f"{where}.title", SECTION_TITLE_MAX)
        entries = section.get("product_items")
        _require(
            isinstance(entries, list) and len(entries) > 0, f"{where}.product_items is required"
        )
        for number, entry in enumerate(entries):
            item_where = f"{where}.product_items[{number}]"
            _known(
                items,
                _dict(entry, item_where).get("product_retailer_id"),
                f"{item_where}.product_retailer_id",
            )
            products += 1
    _require(
        products <= PRODUCTS_MAX, f"a product list holds at most {PRODUCTS_MAX} products in all"
    )


COMMERCE_CHECKS: dict[str, Callable[[Mapping[str, Any], CatalogItems], None]] = {
    "catalog_message": check_catalog_message,
    "product": check_product,
    "product_list": check_product_list,
}
