"""The order Flow's screens (data/flows/order_flow.json): what each submission leads to.

Pure functions: given the screen a customer submitted and its fields, return the next
screen with its data, or the same screen with an `error_message` when the data is wrong.
The last screen closes the Flow (`SUCCESS`); the order itself is made afterwards from the
completion (see flow_actions), so the Flow never waits for Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from actions.orders.model import check_quantity
from actions.orders.money import format_amount
from shop_contract.catalog import Catalog, Product
from shop_contract.flow_screens import SUCCESS_SCREEN

FIRST_SCREEN = "PRODUCT"
DELIVERY_FIELDS = ("name", "street", "postal_code", "city")
DELIVERY_FIELD_MAX_LENGTH = 120


class FlowDataError(ValueError):
    """Submitted Flow data is invalid; the message is shown to the customer as is."""


@dataclass(frozen=True)
class FlowSelection:
    """What the customer chose in the Flow, validated against the catalog."""

    product: Product
    quantity: int
    delivery: dict[str, str] | None

    def params(self) -> dict[str, str]:
        """The fields every later screen carries (Flow data values are strings)."""
        fields = {"product": self.product.id, "quantity": str(self.quantity)}
        for key in DELIVERY_FIELDS:
            fields[key] = (self.delivery or {}).get(key, "")
        return fields


def screen(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"screen": name, "data": dict(data)}


def product_screen(catalog: Catalog) -> dict[str, Any]:
    """The first screen; also passed in the Flow message so opening needs no endpoint call."""
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
    return screen(FIRST_SCREEN, {"products": options})


def parse_product(catalog: Catalog, data: Mapping[str, Any]) -> Product:
    product = catalog.get(str(data.get("product") or ""))
    if product is None:
        raise FlowDataError("Please choose one of the products.")
    return product


def parse_quantity(product: Product, data: Mapping[str, Any]) -> int:
    raw = str(data.get("quantity") or "").strip()
    try:
        quantity = int(raw)
        check_quantity(product, quantity)
    except ValueError:
        raise FlowDataError(
            f"Please choose a quantity between 1 and {product.max_quantity}."
        ) from None
    return quantity


def parse_delivery(product: Product, data: Mapping[str, Any]) -> dict[str, str] | None:
    """The delivery address when the product ships, else None (nothing more is asked)."""
    if not product.shipping:
        return None
    delivery = {key: " ".join(str(data.get(key) or "").split()) for key in DELIVERY_FIELDS}
    missing = [key for key, value in delivery.items() if not value]
    if missing:
        raise FlowDataError("Please fill in your name and full delivery address.")
    if any(len(value) > DELIVERY_FIELD_MAX_LENGTH for value in delivery.values()):
        raise FlowDataError(f"Please keep each field under {DELIVERY_FIELD_MAX_LENGTH} characters.")
    return delivery


def parse_selection(catalog: Catalog, data: Mapping[str, Any]) -> FlowSelection:
    """A complete submission (the summary screen's or the completion's); FlowDataError if not."""
    product = parse_product(catalog, data)
    quantity = parse_quantity(product, data)
    return FlowSelection(product, quantity, parse_delivery(product, data))


def quantity_screen(product: Product, error: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {
        "product": product.id,
        "product_title": product.name,
        "price_text": f"{format_amount(product.unit_amount, product.currency)} each",
        "quantities": [{"id": str(n), "title": str(n)} for n in range(1, product.max_quantity + 1)],
    }
    if error:
        data["error_message"] = error
    return screen("QUANTITY", data)


def summary_screen(selection: FlowSelection) -> dict[str, Any]:
    product = selection.product
    amount = product.unit_amount * selection.quantity
    line = f"{selection.quantity} × {product.name} — {format_amount(amount, product.currency)}"
    if product.interval:
        line += f" every {product.interval}"
    if selection.delivery:
        d = selection.delivery
        line += f"\nDeliver to: {d['name']}, {d['street']}, {d['postal_code']} {d['city']}"
    return screen(
        "SUMMARY",
        {
            **selection.params(),
            "summary": line,
            "total_text": f"Total: {format_amount(amount, product.currency)}",
        },
    )


def success_screen(flow_token: str, selection: FlowSelection) -> dict[str, Any]:
    """Closes the Flow; the params come back on the messages webhook as `nfm_reply`.

    `flow_ref` repeats the token: WhatsApp on iOS has been seen to drop `flow_token` from
    the `nfm_reply`, and without it a second order could not be told from the first.
    """
    params = {"flow_token": flow_token, "flow_ref": flow_token, **selection.params()}
    return screen(SUCCESS_SCREEN, {"extension_message_response": {"params": params}})


def with_error(reply: dict[str, Any], message: str) -> dict[str, Any]:
    return screen(reply["screen"], {**reply["data"], "error_message": message})


def next_screen(
    catalog: Catalog, current: str | None, data: Mapping[str, Any], flow_token: str
) -> dict[str, Any]:
    """The reply to a `data_exchange` submitted from screen `current`."""
    if current == "PRODUCT":
        try:
            return quantity_screen(parse_product(catalog, data))
        except FlowDataError as error:
            return with_error(product_screen(catalog), str(error))
    if current == "QUANTITY":
        try:
            product = parse_product(catalog, data)
        except FlowDataError as error:
            return with_error(product_screen(catalog), str(error))
        try:
            quantity = parse_quantity(product, data)
        except FlowDataError as error:
            return quantity_screen(product, str(error))
        if product.shipping:
            return screen("DELIVERY", {"product": product.id, "quantity": str(quantity)})
        return summary_screen(FlowSelection(product, quantity, None))
    if current == "DELIVERY":
        try:
            return summary_screen(parse_selection(catalog, data))
        except FlowDataError as error:
            fields = {
                "product": str(data.get("product") or ""),
                "quantity": str(data.get("quantity") or ""),
            }
            return screen("DELIVERY", {**fields, "error_message": str(error)})
    if current == "SUMMARY":
        try:
            return success_screen(flow_token, parse_selection(catalog, data))
        except FlowDataError as error:
            return with_error(product_screen(catalog), str(error))
    return with_error(product_screen(catalog), "Let's start again: please choose a product.")


def back_screen(catalog: Catalog, current: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to BACK (a screen with refresh_on_back): that screen, freshly filled."""
    if current == "QUANTITY":
        try:
            return quantity_screen(parse_product(catalog, data))
        except FlowDataError:
            pass
    return product_screen(catalog)
