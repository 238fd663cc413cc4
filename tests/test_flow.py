"""The order Flow: its JSON, the screens the actions send, and orders from completions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from actions.flow_actions import ActionFlowStep
from actions.flow_cart import cart_text, read_cart
from actions.flow_screens import (
    FIRST_SCREEN,
    back_screen,
    next_screen,
    product_screen,
)
from actions.orders.model import Order
from actions.orders.records import with_order
from shop_contract.catalog import Catalog
from shop_contract.custom_messages import FLOW_RESPONSE_KEY
from shop_contract.flow_screens import CONTINUE_IN_CHAT_SCREEN, SUCCESS_SCREEN
from tests.conftest import make_tracker, run_action, slot_updates

FLOW_PATH = Path(__file__).resolve().parent.parent / "data" / "flows" / "order_flow.json"
TOKEN = "flow-token-1"
ADDRESS = {"name": "A Customer", "street": "Main St 1", "postal_code": "1000", "city": "Town"}
# Meta's Flow JSON reference: at most 50 components a screen; a Dropdown takes up to 200
# options (a RadioButtonsGroup 20), each title up to 30 characters; a TextBody up to 4096.
MAX_COMPONENTS_PER_SCREEN = 50
DROPDOWN_MAX_OPTIONS = 200
OPTION_TITLE_MAX = 30
TEXT_BODY_MAX = 4096


@pytest.fixture(scope="module")
def flow() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FLOW_PATH.read_text(encoding="utf-8"))
    return document


def screens(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in flow["screens"]}


def footer_action(screen: dict[str, Any]) -> dict[str, Any]:
    footer = next(c for c in screen["layout"]["children"] if c["type"] == "Footer")
    action: dict[str, Any] = footer["on-click-action"]
    return action


def check_reply_matches_screen(flow: dict[str, Any], reply: dict[str, Any]) -> None:
    """The reply names a declared screen and carries exactly its declared data keys."""
    if reply["screen"] == SUCCESS_SCREEN:
        return
    declared = set(screens(flow)[reply["screen"]].get("data", {}))
    sent = set(reply["data"]) - {"error_message"}
    assert sent == declared, (reply["screen"], sent ^ declared)


def test_flow_json_is_a_current_endpoint_flow(flow: dict[str, Any]) -> None:
    assert re.fullmatch(r"7\.\d", flow["version"])
    assert flow["data_api_version"] in ("3.0", "4.0")
    by_id = screens(flow)
    assert SUCCESS_SCREEN not in by_id, "SUCCESS is reserved"
    assert set(flow["routing_model"]) == set(by_id)
    for targets in flow["routing_model"].values():
        assert set(targets) <= set(by_id)
    assert flow["screens"][0]["id"] == FIRST_SCREEN
    terminal = [s["id"] for s in flow["screens"] if s.get("terminal")]
    assert terminal == [CONTINUE_IN_CHAT_SCREEN]
    for screen_id, targets in flow["routing_model"].items():
        if screen_id != CONTINUE_IN_CHAT_SCREEN:
            assert CONTINUE_IN_CHAT_SCREEN in targets, "every screen can hand over to the chat"
    continue_screen = by_id[CONTINUE_IN_CHAT_SCREEN]
    assert "data" not in continue_screen  # the connector sends it without any data


def test_every_payload_field_comes_from_a_form_field_or_declared_data(
    flow: dict[str, Any],
) -> None:
    for screen in flow["screens"]:
        form_names = {c.get("name") for c in screen["layout"]["children"] if c.get("name")}
        data_keys = set(screen.get("data", {}))
        action = footer_action(screen)
        expected = "complete" if screen.get("terminal") else "data_exchange"
        assert action["name"] == expected, screen["id"]
        for key, value in action["payload"].items():
            if not value.startswith("${"):
                continue  # a literal
            kind, name = re.fullmatch(r"\$\{(form|data)\.(\w+)\}", value).groups()  # type: ignore[union-attr]
            assert name in (form_names if kind == "form" else data_keys), (screen["id"], key)
        for field, spec in screen.get("data", {}).items():
            assert "__example__" in spec, (screen["id"], field)


ROUTE = "espresso-beans:2,filter-coffee:1,green-tea:1"
DELIVERY = {**ADDRESS, "country": "DE"}


def exchange(catalog: Catalog, screen: str, data: dict[str, str]) -> dict[str, Any]:
    return next_screen(catalog, screen, data, TOKEN)


def add(catalog: Catalog, cart: str, product: str, quantity: str, then: str = "add") -> Any:
    data = {"cart": cart, "product": product, "quantity": quantity, "then": then}
    return exchange(catalog, "PRODUCT", data)


def test_each_screen_reply_matches_the_flow_json(flow: dict[str, Any], catalog: Catalog) -> None:
    replies = [
        product_screen(catalog),
        add(catalog, "", "espresso-beans", "2"),
        add(catalog, "espresso-beans:2", "green-tea", "1", "checkout"),
        add(catalog, "", "gift-card", "2", "checkout"),
        exchange(catalog, "DELIVERY", {"cart": "espresso-beans:2", **DELIVERY}),
        exchange(catalog, "DELIVERY", {"cart": "espresso-beans:2", **ADDRESS}),
        back_screen(catalog, "PRODUCT", {}),
    ]
    assert [r["screen"] for r in replies] == [
        "PRODUCT",
        "PRODUCT",
        "DELIVERY",
        "SUMMARY",
        "SUMMARY",
        "DELIVERY",
        "PRODUCT",
    ]
    for reply in replies:
        check_reply_matches_screen(flow, reply)
        target_ok = reply["screen"] == FIRST_SCREEN or any(
            reply["screen"] in targets for targets in flow["routing_model"].values()
        )
        assert target_ok


def test_the_routing_model_has_no_cycles_and_the_cart_screen_answers_itself(
    flow: dict[str, Any],
) -> None:
    routes = flow["routing_model"]
    seen: list[str] = []

    def visit(screen: str, path: tuple[str, ...]) -> None:
        assert screen not in path, f"cycle: {' → '.join((*path, screen))}"
        seen.append(screen)
        for target in routes[screen]:
            visit(target, (*path, screen))

    visit(FIRST_SCREEN, ())
    assert set(seen) == set(routes)  # every screen is reachable from the first
    assert FIRST_SCREEN not in routes[FIRST_SCREEN]


def test_screens_keep_within_flow_json_component_limits(
    flow: dict[str, Any], catalog: Catalog
) -> None:
    for screen in flow["screens"]:
        assert len(screen["layout"]["children"]) <= MAX_COMPONENTS_PER_SCREEN
    first = product_screen(catalog)["data"]
    assert len(first["products"]) <= DROPDOWN_MAX_OPTIONS
    assert all(len(option["title"]) <= OPTION_TITLE_MAX for option in first["products"])
    full = ",".join(f"{p.id}:1" for p in list(catalog)[: catalog.max_lines] if not p.interval)
    assert len(cart_text(catalog, read_cart(catalog, full))) <= TEXT_BODY_MAX


def test_a_three_product_cart_with_a_change_and_a_removal(catalog: Catalog) -> None:
    first = add(catalog, "", "espresso-beans", "2")
    assert first["data"]["cart"] == "espresso-beans:2"
    assert first["data"]["cart_text"] == "2 × Espresso Beans — €25.80\nTotal so far: €25.80"
    assert {"id": "0", "title": "Remove from cart"} in first["data"]["quantities"]
    cart = add(catalog, first["data"]["cart"], "decaf-beans", "1")["data"]["cart"]
    cart = add(catalog, cart, "filter-coffee", "1")["data"]["cart"]
    changed = add(catalog, cart, "decaf-beans", "3")["data"]
    assert changed["cart"] == "espresso-beans:2,decaf-beans:3,filter-coffee:1"
    removed = add(catalog, changed["cart"], "decaf-beans", "0")["data"]
    assert removed["cart"] == "espresso-beans:2,filter-coffee:1"
    delivery = add(catalog, removed["cart"], "green-tea", "1", "checkout")
    assert delivery["screen"] == "DELIVERY" and delivery["data"]["cart"] == ROUTE
    assert delivery["data"]["countries"][0]["id"] == "DE"
    summary = exchange(catalog, "DELIVERY", {"cart": ROUTE, **DELIVERY})["data"]
    assert summary["summary"].splitlines() == [
        "2 × Espresso Beans — €25.80",
        "1 × Filter Coffee — €11.50",
        "1 × Sencha Green Tea — €8.90",
        "Delivery to Germany — free",
        "Deliver to: A Customer, Main St 1, 1000 Town, Germany",
    ]
    assert summary["total_text"] == "Total: €46.20"


def test_delivery_is_charged_below_the_threshold_and_the_country_is_shown(
    catalog: Catalog,
) -> None:
    summary = exchange(catalog, "DELIVERY", {"cart": "green-tea:1", **ADDRESS, "country": "AT"})
    assert "Delivery to Austria — €7.90" in summary["data"]["summary"]
    assert summary["data"]["total_text"] == "Total: €16.80"


def test_checkout_with_nothing_that_ships_skips_the_address(catalog: Catalog) -> None:
    reply = add(catalog, "gift-card:1", "gift-card", "3", "checkout")
    assert reply["screen"] == "SUMMARY"
    assert reply["data"]["total_text"] == "Total: €75.00"
    assert reply["data"]["name"] == "" and reply["data"]["country"] == ""


@pytest.mark.parametrize(
    ("current", "data", "screen", "error"),
    [
        ("PRODUCT", {"cart": "", "product": "a-pony", "quantity": "1"}, "PRODUCT", "choose one"),
        (
            "PRODUCT",
            {"cart": "", "product": "espresso-beans", "then": "add"},
            "PRODUCT",
            "how many",
        ),
        ("PRODUCT", {"cart": "", "then": "add"}, "PRODUCT", "how many"),
        ("PRODUCT", {"cart": "", "then": "checkout"}, "PRODUCT", "cart is empty"),
        (
            "PRODUCT",
            {"cart": "", "product": "espresso-beans", "quantity": "11", "then": "add"},
            "PRODUCT",
            "between 1 and 10",
        ),
        (
            "PRODUCT",
            {"cart": "", "product": "espresso-beans", "quantity": "0", "then": "add"},
            "PRODUCT",
            "no Espresso Beans in your cart",
        ),
        (
            "PRODUCT",
            {"cart": "espresso-beans:2", "product": "coffee-club", "quantity": "1"},
            "PRODUCT",
            "paid on its own",
        ),
        (
            "PRODUCT",
            {
                "cart": "espresso-beans:1,filter-coffee:1,decaf-beans:1,green-tea:1,gift-card:1",
                "product": "pour-over-kit",
                "quantity": "1",
            },
            "PRODUCT",
            "up to 5 different products",
        ),
        (  # a digit Python's int() cannot read
            "PRODUCT",
            {"cart": "", "product": "espresso-beans", "quantity": "²", "then": "add"},
            "PRODUCT",
            "between 1 and 10",
        ),
        ("PRODUCT", {"cart": "espresso-beans:99", "then": "add"}, "PRODUCT", "between 1 and 10"),
        ("PRODUCT", {"cart": "a-pony:1", "then": "checkout"}, "PRODUCT", "no longer sold"),
        ("PRODUCT", {"cart": "espresso-beans:1,espresso-beans:1"}, "PRODUCT", "could not be read"),
        ("DELIVERY", {"cart": "espresso-beans:1", "name": "X"}, "DELIVERY", "address"),
        (
            "DELIVERY",
            {"cart": "espresso-beans:1", **ADDRESS, "country": "JP"},
            "DELIVERY",
            "country",
        ),
        ("DELIVERY", {"cart": ""}, "DELIVERY", "cart is empty"),
        ("DELIVERY", {"cart": "a-pony:1"}, "DELIVERY", "no longer sold"),
        ("SUMMARY", {"cart": "espresso-beans:99", **DELIVERY}, "SUMMARY", "between 1 and 10"),
        ("SUMMARY", {"cart": "espresso-beans:1", **ADDRESS}, "SUMMARY", "country"),
        ("NOWHERE", {}, "PRODUCT", "start again"),
    ],
)
def test_invalid_data_returns_a_screen_with_an_error(
    flow: dict[str, Any],
    catalog: Catalog,
    current: str,
    data: dict[str, str],
    screen: str,
    error: str,
) -> None:
    reply = next_screen(catalog, current, data, TOKEN)
    assert reply["screen"] == screen
    assert error in reply["data"]["error_message"]
    check_reply_matches_screen(flow, reply)
    if current in flow["routing_model"]:  # the same screen, or one it routes to
        assert screen == current or screen in flow["routing_model"][current]


def test_an_invalid_cart_is_never_kept(catalog: Catalog) -> None:
    """A cart line that breaks a limit comes back without the change."""
    reply = add(catalog, "pour-over-kit:3", "pour-over-kit", "4")
    assert reply["data"]["cart"] == "pour-over-kit:3"
    assert "between 1 and 3 × Pour-Over Kit" in reply["data"]["error_message"]


def test_summary_closes_the_flow_with_the_cart(catalog: Catalog) -> None:
    data = {"cart": ROUTE, **DELIVERY}
    reply = next_screen(catalog, "SUMMARY", data, TOKEN)
    assert reply == {
        "screen": SUCCESS_SCREEN,
        "data": {
            "extension_message_response": {
                "params": {"flow_token": TOKEN, "flow_ref": TOKEN, **data}
            }
        },
    }


def test_flow_step_action_sends_the_screen_as_custom_json(catalog: Catalog) -> None:
    tracker = make_tracker(
        "flow_data_exchange",
        {
            "flow_screen": "PRODUCT",
            "flow_data": {"cart": "", "product": "green-tea", "quantity": "2", "then": "add"},
            "flow_token": TOKEN,
        },
        channel="whatsapp",
    )
    messages, events = run_action(ActionFlowStep(), tracker)
    assert messages[0]["custom"][FLOW_RESPONSE_KEY]["data"]["cart"] == "green-tea:2"
    assert events == []
    messages, _ = run_action(ActionFlowStep(), make_tracker("flow_init", {"flow_token": TOKEN}))
    assert messages[0]["custom"][FLOW_RESPONSE_KEY] == product_screen(catalog)


@pytest.mark.usefixtures("no_stripe")
def test_a_cart_completion_makes_one_order_with_every_line_and_its_delivery() -> None:
    completion = {"flow_token": TOKEN, "flow_data": {"cart": ROUTE, **ADDRESS, "country": "AT"}}
    messages, events = run_action(ActionFlowStep(), make_tracker("flow_completed", completion))
    slots = slot_updates(events)
    assert [(i["product"], i["quantity"]) for i in slots["order_items"]] == [
        ("espresso-beans", 2),
        ("filter-coffee", 1),
        ("green-tea", 1),
    ]
    assert (slots["order_destination"], slots["order_shipping"]) == ("Austria", 790)
    assert slots["order_total"] == 4620 + 790
    assert slots["order_delivery"] == ADDRESS
    assert "isn't set up" in messages[0]["text"]


@pytest.mark.usefixtures("no_stripe")
def test_completion_makes_one_order_per_token() -> None:
    """Also a completion from a Flow sent before the cart (one product, nothing to ship)."""
    params = {"product": "gift-card", "quantity": "2"}
    completion = {"flow_token": TOKEN, "flow_data": params}
    messages, events = run_action(ActionFlowStep(), make_tracker("flow_completed", completion))
    slots = slot_updates(events)
    assert slots["order_flow_token"] == TOKEN
    assert slots["order_delivery"] is None
    assert slots["order_total"] == 5000
    assert "isn't set up" in messages[0]["text"]  # no Stripe in this test

    order = Order.from_slots(slots)
    assert order is not None
    repeat = make_tracker("flow_completed", completion, slots=order.to_slots())
    assert run_action(ActionFlowStep(), repeat) == ([], [])
    archived = make_tracker("flow_completed", completion, slots={"orders": with_order(None, order)})
    assert run_action(ActionFlowStep(), archived) == ([], [])
    legacy = {"order_id": order.id, "status": "cancelled", "items": [], "flow_token": TOKEN}
    before = make_tracker("flow_completed", completion, slots={"past_orders": [legacy]})
    assert run_action(ActionFlowStep(), before) == ([], [])


@pytest.mark.parametrize(
    "data",
    [
        {"product": "a-pony", "quantity": "1"},
        {"cart": "espresso-beans:2,coffee-club:1", **ADDRESS, "country": "DE"},
        {"cart": "espresso-beans:2", **ADDRESS},  # a cart Flow always says the country
        # a Flow sent before the cart, for goods that ship: it has no country to charge
        {"product": "espresso-beans", "quantity": "2", **ADDRESS},
        {"cart": ""},
    ],
)
def test_invalid_completion_is_explained(data: dict[str, str]) -> None:
    completion = {"flow_token": TOKEN, "flow_data": data}
    messages, events = run_action(ActionFlowStep(), make_tracker("flow_completed", completion))
    assert "couldn't take that order" in messages[0]["text"] and events == []


def test_flow_error_apologises_and_offers_to_order_again() -> None:
    messages, events = run_action(
        ActionFlowStep(), make_tracker("flow_error", {"flow_screen": "QUANTITY"})
    )
    assert messages[0]["buttons"] == [{"title": "Order again", "payload": "/order"}]
    assert events == []
