"""Stripe Customers in the emulator: created through the API or by Checkout, retrieved, and
named on a Checkout Session (`customer`, or `customer_creation` in payment mode)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from sandbox import stripe_params
from sandbox.stripe_api.checks import check_known, check_metadata
from sandbox.stripe_api.errors import StripeApiError

CUSTOMER_CREATION = ("always", "if_required")


def new_customer(customers: dict[str, dict[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """A new Customer, stored in `customers`, after Stripe's checks of `params`."""
    check_known(params, stripe_params.CUSTOMER_CREATE)
    check_metadata(params.get("metadata"), "metadata")
    customer_id = "cus_test_" + secrets.token_hex(7)
    customer: dict[str, Any] = {
        "id": customer_id,
        "object": "customer",
        "created": int(time.time()),
        "livemode": False,
        "email": params.get("email"),
        "name": params.get("name"),
        "metadata": params.get("metadata") or {},
    }
    customers[customer_id] = customer
    return dict(customer)


def customer_of(customers: Mapping[str, dict[str, Any]], customer_id: str) -> dict[str, Any]:
    """The stored Customer; 404 as Stripe answers an unknown id."""
    customer = customers.get(customer_id)
    if customer is None:
        raise StripeApiError(
            404, f"No such customer: '{customer_id}'", code="resource_missing", param="id"
        )
    return customer


def check_session_customer(
    params: Mapping[str, Any], mode: str, customers: Mapping[str, dict[str, Any]]
) -> None:
    """Stripe's checks of a Checkout Session's `customer` and `customer_creation`."""
    customer, creation = params.get("customer"), params.get("customer_creation")
    if customer is not None and creation is not None:
        raise StripeApiError(
            400,
            "You may only specify one of these parameters: customer, customer_creation.",
            param="customer_creation",
        )
    if creation is not None and mode != "payment":
        raise StripeApiError(
            400,
            "`customer_creation` can only be used in `payment` mode.",
            param="customer_creation",
        )
    if creation is not None and creation not in CUSTOMER_CREATION:
        raise StripeApiError(
            400,
            f"Invalid customer_creation: must be one of {', '.join(CUSTOMER_CREATION)}",
            param="customer_creation",
        )
    update = params.get("customer_update")
    if update is not None and customer is None:
        raise StripeApiError(
            400,
            "`customer_update` can only be used with `customer`.",
            param="customer_update",
        )
    for field, value in (update if isinstance(update, Mapping) else {}).items():
        if value not in ("auto", "never"):
            raise StripeApiError(
                400,
                f"Invalid customer_update[{field}]: must be one of auto, never",
                param=f"customer_update[{field}]",
            )
    if customer is not None and customer not in customers:
        # A deleted Customer, or a test-mode one named with a live key, is just as missing.
        raise StripeApiError(
            400, f"No such customer: '{customer}'", code="resource_missing", param="customer"
        )
    if customer is not None:
        check_tax_location(params, customers[customer])


def check_tax_location(params: Mapping[str, Any], customer: Mapping[str, Any]) -> None:
    """Stripe Tax on a session for an existing Customer needs somewhere to find the
    customer's location: an address already on the Customer, or leave to save the one typed
    on the page onto it (`customer_update[address]` or `[shipping]` = `auto`); else Stripe
    refuses the session with `customer_tax_location_invalid`."""
    tax = params.get("automatic_tax")
    if not isinstance(tax, Mapping) or str(tax.get("enabled")).lower() != "true":
        return
    if customer.get("address") or customer.get("shipping"):
        return
    update = params.get("customer_update")
    update = update if isinstance(update, Mapping) else {}
    if "auto" in (update.get("address"), update.get("shipping")):
        return
    raise StripeApiError(
        400,
        "Automatic tax calculation in Checkout requires a valid address on the Customer. "
        "Add a valid address to the Customer or set either `customer_update[address]` or "
        "`customer_update[shipping]` to 'auto' to save the address entered in Checkout.",
        code="customer_tax_location_invalid",
        param="customer_update[address]",
    )


def save_page_address(customer: dict[str, Any], session: Mapping[str, Any]) -> None:
    """`customer_update[address]` (or `[shipping]`) `auto`: Checkout saves the address typed
    on the page onto the Customer, so Stripe Tax finds it next time. The sandbox page takes
    no address: the country it ships to stands for it."""
    collection = session.get("shipping_address_collection") or {}
    countries = collection.get("allowed_countries") or [SANDBOX_COUNTRY]
    customer["address"] = {"country": countries[0]}


SANDBOX_COUNTRY = "DE"  # where the sandbox's customers live when the page does not ask
