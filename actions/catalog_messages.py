"""Products shown from the shop's Meta catalog (WHATSAPP_CATALOG_ID) on WhatsApp: the
multi-product message for "show me the catalog" (the catalog message when there are more
products than one such message may hold), and the single-product message for a question
about one product. The actions send a `catalog_products` custom message; the connector
builds it with the catalog's id. Elsewhere, or without a catalog, the text answers stay.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from actions.replies import on_whatsapp
from actions.settings import action_settings
from shop_contract.catalog import Catalog, Product
from shop_contract.custom_messages import (
    CATALOG_PRODUCTS_KEY,
    KIND_CATALOG,
    KIND_PRODUCT,
    KIND_PRODUCT_LIST,
    PRODUCTS_BODY,
    PRODUCTS_FALLBACK,
    PRODUCTS_HEADER,
    PRODUCTS_KIND,
    PRODUCTS_RETAILER_ID,
    PRODUCTS_SECTIONS,
)

# What one multi-product message may hold (Meta's limits, checked by the Graph emulator).
LIST_PRODUCTS_MAX = 30
LIST_SECTIONS_MAX = 10
HOW_TO_BUY = "Tap a product to see it, add what you like to your cart and send me the cart."


def shows_catalog(tracker: Tracker) -> bool:
    """Whether products go out from the Meta catalog in this conversation."""
    return action_settings().catalog_id is not None and on_whatsapp(tracker)


def catalog_products_message(catalog: Catalog, fallback: str, extras: str) -> dict[str, Any]:
    """Every product of the Meta catalog, in the sections of data/catalog.yml; `extras`
    names what is sold but not in that catalog."""
    products = catalog.in_meta_catalog
    sections: dict[str, list[str]] = {}
    for product in products:
        assert product.retailer_id is not None
        sections.setdefault(product.section, []).append(product.retailer_id)
    body = f"{HOW_TO_BUY}\n{extras}".strip()
    request: dict[str, Any]
    if len(products) <= LIST_PRODUCTS_MAX and len(sections) <= LIST_SECTIONS_MAX:
        request = {
            PRODUCTS_KIND: KIND_PRODUCT_LIST,
            PRODUCTS_HEADER: "Our products",
            PRODUCTS_SECTIONS: [{"title": t, "retailer_ids": ids} for t, ids in sections.items()],
        }
    else:
        request = {PRODUCTS_KIND: KIND_CATALOG, PRODUCTS_RETAILER_ID: products[0].retailer_id}
    return {CATALOG_PRODUCTS_KEY: {**request, PRODUCTS_BODY: body, PRODUCTS_FALLBACK: fallback}}


def product_message(product: Product, text: str) -> dict[str, Any]:
    """One product of the Meta catalog, with `text` as the message's body."""
    return {
        CATALOG_PRODUCTS_KEY: {
            PRODUCTS_KIND: KIND_PRODUCT,
            PRODUCTS_RETAILER_ID: product.retailer_id,
            PRODUCTS_BODY: text,
            PRODUCTS_FALLBACK: text,
        }
    }
