"""The order Flow's screens (data/flows/order_flow.json): what each submission leads to.

PRODUCT is the cart: the customer picks a product and a quantity (a product already in the
cart gets the new quantity; "Remove" takes it out), sees the cart and its running total,
and either adds and stays or checks out. PRODUCT answers itself with the new cart, so the
routing model stays free of cycles: PRODUCT → DELIVERY (only when something ships) →
SUMMARY → SUCCESS. The cart travels in the screens' data (see flow_cart).

Pure functions: given the screen a customer submitted and its fields, return the next
screen with its data, or a screen with an `error_message` when the data is wrong. The last
screen closes the Flow (`SUCCESS`); the order itself is made afterwards from the completion
(see flow_actions), so the Flow never waits for Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from actions.flow_cart import (
    Cart,
    FlowDataError,
    cart_text,
    cart_value,
    read_cart,
    ships,
    with_line,
)
from actions.orders.basket import with_delivery
from actions.orders.model import Order
from actions.orders.money import format_amount
from shop_contract.catalog import Catalog
from shop_contract.delivery import Destination
from shop_contract.flow_screens import SUCCESS_SCREEN
from shop_contract.shop import default_shop

FIRST_SCREEN = "PRODUCT"
ADDRESS_FIELDS = ("name", "street", "postal_code", "city")
DELIVERY_FIELDS = (*ADDRESS_FIELDS, "country")
DELIVERY_FIELD_MAX_LENGTH = 120
REMOVE = "0"  # the quantity option that takes a product out of the cart
CHECKOUT = "checkout"  # the PRODUCT screen's `then` choice that moves on from the cart


@dataclass(frozen=True)
class FlowOrder:
    """What the customer confirmed in the Flow, validated against the catalog."""

    cart: Cart
    delivery: dict[str, str] | None  # name and address, when something ships
    destination: Destination | None  # the country it ships to (data/shop.yml)

    def params(self) -> dict[str, str]:
        """The fields the summary carries (Flow data values are strings)."""
        fields = {"cart": cart_value(self.cart)}
        for key in ADDRESS_FIELDS:
            fields[key] = (self.delivery or {}).get(key, "")
        fields["country"] = self.destination.code if self.destination else ""
        return fields

    def draft(self, catalog: Catalog, flow_token: str | None = None) -> Order:
        """The order these lines make, its delivery priced from data/shop.yml."""
        items = {line.product_id: line.quantity for line in self.cart}
        order = Order.start(catalog, items, flow_token=flow_token, delivery=self.delivery)
        return with_delivery(order, catalog, self.destination)


def screen(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"screen": name, "data": dict(data)}


def product_screen(catalog: Catalog, cart: Cart = (), error: str = "") -> dict[str, Any]:
    """The cart screen; the first one (empty) also travels in the Flow message, so opening
    the Flow needs no endpoint call."""
    options = []
    for product in catalog:
        price = format_amount(product.unit_amount, product.currency)
        if product.interval:
            price += f" / {product.interval}"
        options.append(
            {
                "id": product.id,
                "title": product.name,
                "description": f"{price} · {product.description}",
            }
        )
    most = max(product.max_quantity for product in catalog)
    quantities = [{"id": str(n), "title": str(n)} for n in range(1, most + 1)]
    if cart:
        quantities.append({"id": REMOVE, "title": "Remove from cart"})
    data: dict[str, Any] = {
        "cart": cart_value(cart),
        "cart_text": cart_text(catalog, cart),
        "products": options,
        "quantities": quantities,
    }
    if error:
        data["error_message"] = error
    return screen(FIRST_SCREEN, data)


def delivery_screen(catalog: Catalog, cart: Cart, error: str = "") -> dict[str, Any]:
    countries = [
        {"id": d.code, "title": d.name, "description": delivery_terms(d, catalog.currency)}
        for d in default_shop().destinations
    ]
    data: dict[str, Any] = {"cart": cart_value(cart), "countries": countries}
    if error:
        data["error_message"] = error
    return screen("DELIVERY", data)


def delivery_terms(destination: Destination, currency: str) -> str:
    terms = f"Delivery {format_amount(destination.cost, currency)}"
    if destination.free_from is not None:
        terms += f", free from {format_amount(destination.free_from, currency)}"
    return terms


def parse_delivery(
    catalog: Catalog, cart: Cart, data: Mapping[str, Any], legacy: bool = False
) -> FlowOrder:
    """The cart with its address and country when it ships, else without (nothing more is
    asked). A `legacy` completion (from a Flow sent before the cart) has no country: it is
    taken only for what does not ship."""
    if not ships(catalog, cart):
        return FlowOrder(cart, None, None)
    delivery = {key: " ".join(str(data.get(key) or "").split()) for key in ADDRESS_FIELDS}
    if any(not value for value in delivery.values()):
        raise FlowDataError("Please fill in your name and full delivery address.")
    if any(len(value) > DELIVERY_FIELD_MAX_LENGTH for value in delivery.values()):
        raise FlowDataError(f"Please keep each field under {DELIVERY_FIELD_MAX_LENGTH} characters.")
    code = str(data.get("country") or "")
    if legacy and not code:  # it would ship without the delivery charge its country has
        raise FlowDataError(
            "Our order form has changed. Please open it again to choose where we deliver."
        )
    destination = next((d for d in default_shop().destinations if d.code == code), None)
    if destination is None:
        raise FlowDataError("Please choose the country we deliver to.")
    return FlowOrder(cart, delivery, destination)


def parse_order(catalog: Catalog, data: Mapping[str, Any]) -> FlowOrder:
    """A complete submission (the summary screen's or the completion's); FlowDataError if
    not. A completion from a Flow sent before the cart (`product` and `quantity`, no
    `cart`) is read as a cart of that one line, refused when it ships (no country)."""
    raw = data.get("cart")
    legacy = raw is None and bool(data.get("product"))
    if legacy:
        raw = f"{data.get('product')}:{data.get('quantity') or ''}"
    cart = read_cart(catalog, raw)
    if not cart:
        raise FlowDataError("Your cart is empty. Please choose a product.")
    return parse_delivery(catalog, cart, data, legacy)


def summary_screen(catalog: Catalog, order: FlowOrder) -> dict[str, Any]:
    rows = order.draft(catalog).summary(catalog).split("\n")
    product_ids = {line.product_id for line in order.cart}
    interval = next((p.interval for p in catalog if p.id in product_ids and p.interval), None)
    if interval:
        rows[0] += f" every {interval}"
    if order.delivery and order.destination:
        d = order.delivery
        address = f"{d['street']}, {d['postal_code']} {d['city']}, {order.destination.name}"
        rows.insert(-1, f"Deliver to: {d['name']}, {address}")
    return screen(
        "SUMMARY",
        {**order.params(), "summary": "\n".join(rows[:-1]), "total_text": rows[-1]},
    )


def success_screen(flow_token: str, order: FlowOrder) -> dict[str, Any]:
    """Closes the Flow; the params come back on the messages webhook as `nfm_reply`.

    `flow_ref` repeats the token: WhatsApp on iOS has been seen to drop `flow_token` from
    the `nfm_reply`, and without it a second order could not be told from the first.
    """
    params = {"flow_token": flow_token, "flow_ref": flow_token, **order.params()}
    return screen(SUCCESS_SCREEN, {"extension_message_response": {"params": params}})


def summary_error(data: Mapping[str, Any], error: str) -> dict[str, Any]:
    """SUMMARY again, telling what is wrong (it leads nowhere but onwards)."""
    fields = {key: str(data.get(key) or "") for key in ("cart", *DELIVERY_FIELDS)}
    text = f"{error} Please go back to your cart."
    return screen("SUMMARY", {**fields, "summary": text, "total_text": "", "error_message": error})


def cart_step(catalog: Catalog, data: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to PRODUCT: the cart changed (and shown again), or the next step."""
    try:
        cart = read_cart(catalog, data.get("cart"))
    except FlowDataError as error:
        return product_screen(catalog, (), str(error))
    product_id = str(data.get("product") or "")
    quantity = str(data.get("quantity") or "").strip()
    checkout = data.get("then") == CHECKOUT
    if product_id or not checkout:
        if not product_id or not quantity:
            return product_screen(catalog, cart, "Please choose a product and how many.")
        try:
            cart = with_line(
                catalog, cart, product_id, int(quantity) if quantity.isdecimal() else -1
            )
        except FlowDataError as error:
            return product_screen(catalog, cart, str(error))
    if not checkout:
        return product_screen(catalog, cart)
    if not cart:
        return product_screen(catalog, cart, "Your cart is empty. Please choose a product.")
    if ships(catalog, cart):
        return delivery_screen(catalog, cart)
    return summary_screen(catalog, FlowOrder(cart, None, None))


def next_screen(
    catalog: Catalog, current: str | None, data: Mapping[str, Any], flow_token: str
) -> dict[str, Any]:
    """The reply to a `data_exchange` submitted from screen `current`."""
    if current == FIRST_SCREEN:
        return cart_step(catalog, data)
    if current == "DELIVERY":
        # The routing model leads DELIVERY only onwards: a bad cart is told here, and the
        # customer goes back to the cart screen (WhatsApp's own Back) to change it.
        try:
            cart = read_cart(catalog, data.get("cart"))
        except FlowDataError as error:
            return delivery_screen(catalog, (), f"{error} Please go back to your cart.")
        if not cart:
            return delivery_screen(catalog, (), "Your cart is empty. Please go back to it.")
        try:
            return summary_screen(catalog, parse_delivery(catalog, cart, data))
        except FlowDataError as error:
            return delivery_screen(catalog, cart, str(error))
    if current == "SUMMARY":
        try:
            return success_screen(flow_token, parse_order(catalog, data))
        except FlowDataError as error:
            return summary_error(data, str(error))
    return product_screen(catalog, (), "Let's start again: please choose a product.")


def back_screen(catalog: Catalog, current: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to BACK (a screen with refresh_on_back; none has it today): the cart screen,
    with the cart when the request carries one."""
    try:
        return product_screen(catalog, read_cart(catalog, data.get("cart")))
    except FlowDataError:
        return product_screen(catalog)
