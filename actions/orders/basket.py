"""Changing a draft order's lines, within the shop's limits, and pricing its delivery.

Pure functions: each returns a new Order or raises BasketError, whose message is what the
customer is told. The limits: `max_quantity` per product and `max_lines_per_order` from
data/catalog.yml, and a subscription is ordered on its own (see `check_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from actions.orders.model import Order, OrderLine
from actions.orders.text_order import Wanted
from shop_contract.catalog import Catalog, Product
from shop_contract.delivery import Destination


class BasketError(ValueError):
    """A change the order cannot take; the message is for the customer."""


def product_of(catalog: Catalog, product_id: str) -> Product:
    product = catalog.get(product_id)
    if product is None:
        raise BasketError("Sorry, that product is no longer in our catalog.")
    return product


def check_lines(catalog: Catalog, lines: Iterable[OrderLine]) -> None:
    """BasketError when the lines break a limit.

    A subscription is paid on its own: Stripe Checkout offers shipping options only in
    payment mode, so one-off products on a subscription's first invoice could not be charged
    their delivery. Refusing the mix (with a clear message) keeps every charge right.
    """
    held = list(lines)
    if len(held) > catalog.max_lines:
        raise BasketError(
            f"An order can hold up to {catalog.max_lines} different products. "
            "Please send me the rest as a second order once this one is paid."
        )
    products = [product_of(catalog, line.product_id) for line in held]
    for product, line in zip(products, held, strict=True):
        if line.quantity > product.max_quantity:
            raise BasketError(
                f"You can order at most {product.max_quantity} × {product.name} at a time."
            )
    subscription = next((p for p in products if p.is_subscription), None)
    if subscription is not None and len(products) > 1:
        raise BasketError(
            f"{subscription.name} is a subscription and is paid on its own: please order it "
            "separately from other products."
        )


def with_delivery(order: Order, catalog: Catalog, destination: Destination | None) -> Order:
    """The order with its delivery priced: `destination`'s flat rate (free from its
    `free_from`), when a one-off line ships; none otherwise (a gift card, a subscription,
    whose price includes its deliveries)."""
    ships = any(
        product.shipping and not product.is_subscription
        for product in (product_of(catalog, line.product_id) for line in order.lines)
    )
    if not ships or destination is None:
        return replace(order, destination=None, shipping=0)
    shipping = destination.shipping_for(order.subtotal)
    return replace(order, destination=destination.name, shipping=shipping)


def started(catalog: Catalog, wanted: Iterable[Wanted], destination: Destination | None) -> Order:
    """A new draft for the products asked for (1 of each whose quantity was not said)."""
    lines = []
    for item in wanted:
        product = product_of(catalog, item.product)
        lines.append(OrderLine(product.id, _at_least_one(item.quantity), product.unit_amount))
    if not lines:
        raise BasketError("Which product would you like?")
    check_lines(catalog, lines)
    order = Order.start(catalog, {line.product_id: line.quantity for line in lines})
    return with_delivery(order, catalog, destination)


def added(
    order: Order, catalog: Catalog, wanted: Iterable[Wanted], destination: Destination | None
) -> Order:
    """More of the products asked for (1 more when no quantity was said), new ones last."""
    lines = list(order.lines)
    for item in wanted:
        product = product_of(catalog, item.product)
        more = _at_least_one(item.quantity)
        index = next((i for i, line in enumerate(lines) if line.product_id == product.id), None)
        if index is None:
            lines.append(OrderLine(product.id, more, product.unit_amount))
        else:
            lines[index] = replace(lines[index], quantity=lines[index].quantity + more)
    return _priced(order, catalog, lines, destination)


def removed(
    order: Order, catalog: Catalog, wanted: Iterable[Wanted], destination: Destination | None
) -> Order:
    """Without the products named (or with that many fewer, when a quantity was said). The
    result may hold no line: the caller cancels such an order."""
    lines = list(order.lines)
    for item in wanted:
        index = next((i for i, line in enumerate(lines) if line.product_id == item.product), None)
        if index is None:
            raise BasketError(f"There's no {product_of(catalog, item.product).name} in your order.")
        left = 0 if item.quantity is None else lines[index].quantity - item.quantity
        if left > 0:
            lines[index] = replace(lines[index], quantity=left)
        else:
            del lines[index]
    return _priced(order, catalog, lines, destination)


def with_quantity(
    order: Order,
    catalog: Catalog,
    product_id: str,
    quantity: int,
    destination: Destination | None,
) -> Order:
    """`quantity` of the product (added when the order has none of it; 0 removes it)."""
    if quantity <= 0:
        return removed(order, catalog, [Wanted(product_id, None)], destination)
    product = product_of(catalog, product_id)
    lines = [
        replace(line, quantity=quantity) if line.product_id == product_id else line
        for line in order.lines
    ]
    if order.line_of(product_id) is None:
        lines.append(OrderLine(product.id, quantity, product.unit_amount))
    return _priced(order, catalog, lines, destination)


def _priced(
    order: Order, catalog: Catalog, lines: list[OrderLine], destination: Destination | None
) -> Order:
    """The order with these lines (checked), its delivery priced again: the free-delivery
    threshold may have been crossed either way."""
    check_lines(catalog, lines)
    return with_delivery(replace(order, lines=tuple(lines)), catalog, destination)


def _at_least_one(quantity: int | None) -> int:
    if quantity is not None and quantity < 1:
        raise BasketError("How many would you like? Tell me a number from 1.")
    return 1 if quantity is None else quantity
