"""Graph API bodies of the messages that show products from the shop's Meta catalog, built
from the actions' `catalog_products` custom message (shop_contract/custom_messages.py) and
the catalog id the connector is configured with (WHATSAPP_CATALOG_ID).

Meta's limits (WhatsApp Cloud API, "Share products with customers"): a multi-product message
(`product_list`) needs a text header (60 characters) and a body (1024), and holds at most
10 sections (titles of 24 characters) and 30 products in all; longer lists go out as
several messages. A single-product message (`product`) has an optional body and no header;
a catalog message (`catalog_message`) a body and an optional thumbnail product.
"""

from __future__ import annotations

from typing import Any

from connectors.whatsapp.messages import INTERACTIVE_BODY_LIMIT, clip
from shop_contract.custom_messages import (
    KIND_CATALOG,
    KIND_PRODUCT,
    KIND_PRODUCT_LIST,
    PRODUCTS_BODY,
    PRODUCTS_HEADER,
    PRODUCTS_KIND,
    PRODUCTS_RETAILER_ID,
    PRODUCTS_SECTIONS,
)

HEADER_LIMIT = 60
SECTION_TITLE_LIMIT = 24
SECTIONS_MAX = 10
PRODUCTS_MAX = 30


def catalog_bodies(request: dict[str, Any], catalog_id: str) -> list[dict[str, Any]]:
    """The messages that carry `request`; none when it is not one we can build (the caller
    then sends its fallback text)."""
    kind = request.get(PRODUCTS_KIND)
    body = str(request.get(PRODUCTS_BODY) or "")
    retailer_id = request.get(PRODUCTS_RETAILER_ID)
    if kind == KIND_CATALOG and body:
        action: dict[str, Any] = {"name": "catalog_message"}
        if isinstance(retailer_id, str) and retailer_id:
            action["parameters"] = {"thumbnail_product_retailer_id": retailer_id}
        return [_interactive("catalog_message", body, action)]
    if kind == KIND_PRODUCT and isinstance(retailer_id, str) and retailer_id:
        action = {"catalog_id": catalog_id, "product_retailer_id": retailer_id}
        return [_interactive("product", body, action)]
    if kind == KIND_PRODUCT_LIST and body:
        pages = _pages(request.get(PRODUCTS_SECTIONS))
        header = str(request.get(PRODUCTS_HEADER) or "") or "Our products"
        return [
            _product_list(_page_header(header, number, len(pages)), body, catalog_id, page)
            for number, page in enumerate(pages, start=1)
        ]
    return []


def _interactive(kind: str, body: str, action: dict[str, Any]) -> dict[str, Any]:
    interactive: dict[str, Any] = {"type": kind, "action": action}
    if body:
        interactive["body"] = {"text": clip(body, INTERACTIVE_BODY_LIMIT)}
    return {"type": "interactive", "interactive": interactive}


def _product_list(
    header: str, body: str, catalog_id: str, sections: list[dict[str, Any]]
) -> dict[str, Any]:
    message = _interactive("product_list", body, {"catalog_id": catalog_id, "sections": sections})
    message["interactive"]["header"] = {"type": "text", "text": header}
    return message


def _page_header(header: str, number: int, pages: int) -> str:
    mark = f" ({number}/{pages})" if pages > 1 else ""
    return clip(header, HEADER_LIMIT - len(mark)) + mark


def _pages(raw_sections: Any) -> list[list[dict[str, Any]]]:
    """The sections cut into messages of at most 10 sections and 30 products; a section
    longer than what is left of a message goes on in the next one, under the same title."""
    pages: list[list[dict[str, Any]]] = []
    page: list[dict[str, Any]] = []
    room = PRODUCTS_MAX
    for raw in raw_sections if isinstance(raw_sections, list) else []:
        section = raw if isinstance(raw, dict) else {}
        title = clip(str(section.get("title") or "Products"), SECTION_TITLE_LIMIT)
        ids = [i for i in section.get("retailer_ids") or [] if isinstance(i, str) and i]
        while ids:
            if room == 0 or len(page) == SECTIONS_MAX:
                pages.append(page)
                page, room = [], PRODUCTS_MAX
            taken, ids = ids[:room], ids[room:]
            page.append(
                {"title": title, "product_items": [{"product_retailer_id": i} for i in taken]}
            )
            room -= len(taken)
    if page:
        pages.append(page)
    return pages
