"""End to end through the sandbox with a Meta catalog (WHATSAPP_CATALOG_ID): the customer's
cart arrives as WhatsApp's `order` message, becomes an order priced from data/catalog.yml,
and ends in one Checkout Session and one confirmation listing every line."""

from __future__ import annotations

import pytest

from tests.support.sandbox_client import Customer, Sandbox, kind, link_of, shown
from tests.test_e2e_sandbox import TEXT_PURCHASE, order_id, pay_and_see, session_of

pytestmark = pytest.mark.live  # every test here talks to the running bot


def created_session(sandbox: Sandbox, order: str) -> dict[str, str | list[dict[str, str]]]:
    """The parameters of the one Checkout Session created for `order`."""
    (created,) = [
        r
        for r in sandbox.emulators.stripe.requests_to("POST", "/v1/checkout/sessions")
        if r.params["client_reference_id"] == order
    ]
    params: dict[str, str | list[dict[str, str]]] = created.params
    return params


def confirm(customer: Customer, before: int) -> dict[str, object]:
    summary = customer.next(before)
    assert "Shall I send you the payment link?" in shown(summary)
    customer.tap(summary, "Yes, pay now")
    return customer.next(before + 1)


def test_a_two_product_cart_ends_in_one_session_and_one_confirmation_of_every_line(
    live_sandbox: Sandbox,
) -> None:
    gus = live_sandbox.customer("Gus")
    gus.say("show me the catalog")
    catalog = gus.next(0)
    assert kind(catalog) == "interactive:product_list"  # accepted by the Graph emulator
    gus.send_cart(
        [{"retailer_id": "BL-ESP-250", "quantity": 2}, {"retailer_id": "BL-SEN-100", "quantity": 1}]
    )
    link = confirm(gus, 1)
    order = order_id(link)
    lines = "2 × Espresso Beans — €25.80\n1 × Sencha Green Tea — €8.90\nDelivery to Germany — €4.90"
    assert f"{lines}\nTotal: €39.60" in shown(gus.bot_messages()[1])
    assert "changed" not in shown(gus.bot_messages()[1])
    params = created_session(live_sandbox, order)
    assert params["line_items"] == [
        {"price": "price_1QShopEspresso250", "quantity": "2"},
        {"price": "price_1QShopSencha100", "quantity": "1"},
    ]
    pay_and_see(gus, link_of(link), order, ["interactive:product_list", *TEXT_PURCHASE])
    stripe = live_sandbox.emulators.stripe
    charge = "ch_test_" + str(stripe.sessions[session_of(link)]["payment_intent"]).split("_")[-1]
    assert shown(gus.bot_messages()[-1]) == (
        f"Payment received, thank you! Order {order} is confirmed:\n{lines}\nPaid: €39.60\n"
        f"Receipt: {stripe.base_url}/receipts/{charge}"
    )


def test_a_tampered_cart_price_is_not_charged_the_session_charges_ours(
    live_sandbox: Sandbox,
) -> None:
    """The customer is told the price changed and shown ours; confirming charges ours."""
    hal = live_sandbox.customer("Hal")
    hal.send_cart([{"retailer_id": "BL-ESP-250", "quantity": 1, "item_price": 0.01}])
    link = confirm(hal, 0)
    summary = shown(hal.bot_messages()[0])
    assert "The price of Espresso Beans has changed: it's €12.90 now" in summary
    assert "1 × Espresso Beans — €12.90\nDelivery to Germany — €4.90\nTotal: €17.80" in summary
    order = order_id(link)
    assert created_session(live_sandbox, order)["line_items"] == [
        {"price": "price_1QShopEspresso250", "quantity": "1"}
    ]
    session = live_sandbox.emulators.stripe.sessions[session_of(link)]
    assert (session["amount_subtotal"], session["amount_total"]) == (1290, 1780)
    pay_and_see(hal, link_of(link), order, TEXT_PURCHASE)
    assert "\nPaid: €17.80\nReceipt: " in shown(hal.bot_messages()[-1])


def test_a_cart_from_another_catalog_or_over_the_limit_gets_a_reply_and_no_order(
    live_sandbox: Sandbox,
) -> None:
    ivy = live_sandbox.customer("Ivy")
    ivy.send_cart([{"retailer_id": "BL-ESP-250", "quantity": 1}], catalog_id="999")
    assert "comes from a catalog I can't sell from" in shown(ivy.next(0))
    ivy.send_cart([{"retailer_id": "BL-ESP-250", "quantity": 11}])
    assert "at most 10 × Espresso Beans" in shown(ivy.next(1))
    assert [kind(m) for m in ivy.wait(0, settle=True)] == ["text", "text"]
