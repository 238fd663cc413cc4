"""The order Flow's cart: the lines chosen so far, carried in the Flow's own screen data.

The cart travels as text ("espresso-beans:2,green-tea:1") from screen to screen and back in
each submission, instead of being kept on our side per flow token. Every request is then a
pure function of what it carries: a request WhatsApp retries cannot add a line twice, a
customer who goes back a screen submits exactly the cart that screen shows, and no replica
has to share or clean up cart state. The customer's device could edit the text, so every
submission is read against data/catalog.yml again (product exists, quantity within its
max_quantity, at most max_lines_per_order lines, a subscription on its own): an edited cart
is at most a cart the customer could have chosen, priced from our catalog.
"""

from __future__ import annotations

from collections.abc import Iterable

from actions.orders.basket import BasketError, check_lines
from actions.orders.model import OrderLine, check_quantity
from actions.orders.money import format_amount
from shop_contract.catalog import Catalog

Cart = tuple[OrderLine, ...]
MAX_CART_CHARS = 2000  # 20 lines of 63-character ids and two-digit quantities fit
EMPTY_CART_TEXT = "Your cart is empty."


class FlowDataError(ValueError):
    """Submitted Flow data is invalid; the message is shown to the customer as is."""


def cart_value(cart: Iterable[OrderLine]) -> str:
    """The cart as the Flow carries it."""
    return ",".join(f"{line.product_id}:{line.quantity}" for line in cart)


def read_cart(catalog: Catalog, raw: object) -> Cart:
    """The cart a submission carries, checked against the catalog; FlowDataError if not."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return ()
    if len(text) > MAX_CART_CHARS:
        raise FlowDataError("Your cart could not be read. Let's start again.")
    lines: list[OrderLine] = []
    for item in text.split(","):
        product_id, _, amount = item.partition(":")
        product = catalog.get(product_id.strip())
        if product is None:
            raise FlowDataError("A product in your cart is no longer sold. Let's start again.")
        if any(line.product_id == product.id for line in lines):
            raise FlowDataError("Your cart could not be read. Let's start again.")
        try:
            quantity = int(amount)
            check_quantity(product, quantity)
        except ValueError:
            raise FlowDataError(
                f"You can order between 1 and {product.max_quantity} × {product.name}."
            ) from None
        lines.append(OrderLine(product.id, quantity, product.unit_amount))
    return checked(catalog, lines)


def checked(catalog: Catalog, lines: Iterable[OrderLine]) -> Cart:
    """The lines, when they keep the shop's limits (basket.check_lines); FlowDataError if not."""
    held = tuple(lines)
    try:
        check_lines(catalog, held)
    except BasketError as error:
        raise FlowDataError(str(error)) from None
    return held


def with_line(catalog: Catalog, cart: Cart, product_id: str, quantity: int) -> Cart:
    """The cart with `quantity` of the product: a new line, a changed one, or (0) none."""
    product = catalog.get(product_id)
    if product is None:
        raise FlowDataError("Please choose one of the products.")
    held = any(line.product_id == product.id for line in cart)
    if quantity == 0:
        if not held:
            raise FlowDataError(f"There's no {product.name} in your cart to remove.")
        return tuple(line for line in cart if line.product_id != product.id)
    try:
        check_quantity(product, quantity)
    except ValueError:
        raise FlowDataError(
            f"Please choose between 1 and {product.max_quantity} × {product.name}."
        ) from None
    line = OrderLine(product.id, quantity, product.unit_amount)
    if held:
        return checked(catalog, (line if old.product_id == product.id else old for old in cart))
    return checked(catalog, (*cart, line))


def cart_text(catalog: Catalog, cart: Cart) -> str:
    """One row per line and the running total (delivery comes once the address is known)."""
    if not cart:
        return EMPTY_CART_TEXT
    rows = []
    for line in cart:
        product = catalog.get(line.product_id)
        name = product.name if product else line.product_id
        rows.append(f"{line.quantity} × {name} — {format_amount(line.amount, catalog.currency)}")
    total = format_amount(sum(line.amount for line in cart), catalog.currency)
    return "\n".join([*rows, f"Total so far: {total}"])


def ships(catalog: Catalog, cart: Cart) -> bool:
    """True when a product in the cart is delivered, so the Flow asks for an address."""
    products = (catalog.get(line.product_id) for line in cart)
    return any(product is not None and product.shipping for product in products)
