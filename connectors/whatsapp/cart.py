"""A customer's cart from a catalog, product or multi-product message: WhatsApp sends it as
a message of type `order` with `order {catalog_id, text, product_items[{product_retailer_id,
quantity, item_price, currency}]}`.

Parsed here into plain values, kept as sent (None where unusable): whether the catalog,
the items, the quantities and the prices are acceptable is the shop's business (the action
that turns the cart into an order). `item_price` is what the customer's cart showed, in
major units (7.99): information, never a price to charge.
"""

from __future__ import annotations

from typing import Any


def _quantity(value: Any) -> int | None:
    """A whole number of items as sent (digits in a string too); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _price(value: Any) -> str | None:
    """The price as the decimal text it was sent as (7.99 -> '7.99'), so that no float
    arithmetic happens here; None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return None
    return text if number == number and abs(number) != float("inf") else None


def catalog_order(raw: Any) -> dict[str, Any]:
    """The cart: the catalog it came from, the customer's note and its items."""
    order = raw if isinstance(raw, dict) else {}
    items = order.get("product_items")
    return {
        "catalog_id": str(order.get("catalog_id") or ""),
        "text": str(order.get("text") or ""),
        "items": [
            {
                "retailer_id": str(item.get("product_retailer_id") or ""),
                "quantity": _quantity(item.get("quantity")),
                "item_price": _price(item.get("item_price")),
                "currency": str(item.get("currency") or ""),
            }
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ],
    }
