"""A cart sent from the shop's Meta catalog (a WhatsApp `order` message), read against
data/catalog.yml: which products and how many.

The cart's prices are what the customer's WhatsApp showed, and the customer's device sent
them: they are compared with ours only to tell the customer when they differ. The order is
always priced from our catalog (basket.started), whatever the cart says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from actions.orders.basket import BasketError
from actions.orders.money import format_amount, minor_units
from actions.orders.text_order import Wanted
from shop_contract.catalog import Catalog, Product

WRONG_CATALOG = (
    "Sorry, that cart comes from a catalog I can't sell from. Please open our catalog "
    '(say "show me the catalog") and send your cart from there.'
)
EMPTY_CART = 'Your cart was empty. Add something from our catalog, or tell me e.g. "2 espresso".'


@dataclass(frozen=True)
class CartItem:
    """One line of the cart, as the connector read it (None where the value was unusable)."""

    retailer_id: str
    quantity: int | None
    item_price: str | None  # decimal text in major units
    currency: str

    @classmethod
    def from_entity(cls, value: Any) -> CartItem:
        raw: Mapping[str, Any] = value if isinstance(value, dict) else {}
        quantity = raw.get("quantity")
        price = raw.get("item_price")
        return cls(
            retailer_id=str(raw.get("retailer_id") or ""),
            quantity=quantity
            if isinstance(quantity, int) and not isinstance(quantity, bool)
            else None,
            item_price=str(price) if isinstance(price, (str, int, float)) else None,
            currency=str(raw.get("currency") or ""),
        )


@dataclass(frozen=True)
class CartReading:
    """The products asked for, and what to tell the customer about prices that changed."""

    wanted: tuple[Wanted, ...]
    price_notes: tuple[str, ...]


def read_cart(
    catalog: Catalog, our_catalog_id: str, cart_catalog_id: str, items: Iterable[CartItem]
) -> CartReading:
    """The cart's products and quantities; BasketError (the message is for the customer)
    for a cart from another catalog, an empty one, an item we do not sell or an unreadable
    quantity. Limits (max_quantity, lines per order) are checked when the order is made."""
    if cart_catalog_id != our_catalog_id:
        raise BasketError(WRONG_CATALOG)
    held = list(items)
    if not held:
        raise BasketError(EMPTY_CART)
    unknown = sum(1 for item in held if catalog.by_retailer_id(item.retailer_id) is None)
    if unknown:
        what = "One item" if unknown == 1 else f"{unknown} items"
        raise BasketError(
            f"Sorry, {what} in your cart {'is' if unknown == 1 else 'are'} not in our catalog "
            "any more, so I can't take the cart as it is. Please remove "
            f"{'it' if unknown == 1 else 'them'} and send the cart again."
        )
    quantities: dict[str, int] = {}
    notes: list[str] = []
    for item in held:
        product = catalog.by_retailer_id(item.retailer_id)
        assert product is not None
        if item.quantity is None or item.quantity < 1:
            raise BasketError(
                f"I couldn't read how many {product.name} you'd like. Please set the quantity "
                "in your cart and send it again."
            )
        # The same item twice (two devices' carts, say) is one line with both quantities.
        quantities[product.id] = quantities.get(product.id, 0) + item.quantity
        note = price_note(product, item)
        if note and note not in notes:
            notes.append(note)
    return CartReading(tuple(Wanted(p, q) for p, q in quantities.items()), tuple(notes))


def price_note(product: Product, item: CartItem) -> str | None:
    """What to say when the cart showed another price or currency than ours; None when
    they agree."""
    ours = format_amount(product.unit_amount, product.currency)
    if item.item_price is None:
        return f"{product.name} costs {ours}."
    same_currency = item.currency.lower() == product.currency
    shown = minor_units(item.item_price, item.currency)
    if same_currency and shown == product.unit_amount:
        return None
    if shown is None:
        return f"{product.name} costs {ours}."
    was = format_amount(shown, item.currency) if item.currency else item.item_price
    return f"The price of {product.name} has changed: it's {ours} now (your cart showed {was})."
