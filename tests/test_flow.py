"""The order Flow: its JSON, the screens the actions send, and orders from completions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from actions.flow_actions import ActionFlowStep
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


def test_each_screen_reply_matches_the_flow_json(flow: dict[str, Any], catalog: Catalog) -> None:
    replies = [
        product_screen(catalog),
        next_screen(catalog, "PRODUCT", {"product": "espresso-beans"}, TOKEN),
        next_screen(catalog, "QUANTITY", {"product": "espresso-beans", "quantity": "2"}, TOKEN),
        next_screen(catalog, "QUANTITY", {"product": "gift-card", "quantity": "2"}, TOKEN),
        next_screen(
            catalog, "DELIVERY", {"product": "espresso-beans", "quantity": "2", **ADDRESS}, TOKEN
        ),
        back_screen(catalog, "QUANTITY", {"product": "espresso-beans"}),
    ]
    assert [r["screen"] for r in replies] == [
        "PRODUCT",
        "QUANTITY",
        "DELIVERY",
        "SUMMARY",
        "SUMMARY",
        "QUANTITY",
    ]
    for reply in replies:
        check_reply_matches_screen(flow, reply)
        target_ok = reply["screen"] == FIRST_SCREEN or any(
            reply["screen"] in targets for targets in flow["routing_model"].values()
        )
        assert target_ok


def test_product_without_shipping_skips_the_address(catalog: Catalog) -> None:
    reply = next_screen(catalog, "QUANTITY", {"product": "gift-card", "quantity": "3"}, TOKEN)
    assert reply["screen"] == "SUMMARY"
    assert reply["data"]["total_text"] == "Total: €75.00"
    assert reply["data"]["name"] == ""


@pytest.mark.parametrize(
    ("current", "data", "screen", "error"),
    [
        ("PRODUCT", {"product": "a-pony"}, "PRODUCT", "choose one of the products"),
        (
            "QUANTITY",
            {"product": "espresso-beans", "quantity": "11"},
            "QUANTITY",
            "between 1 and 10",
        ),
        (
            "QUANTITY",
            {"product": "espresso-beans", "quantity": "two"},
            "QUANTITY",
            "between 1 and 10",
        ),
        (
            "DELIVERY",
            {"product": "espresso-beans", "quantity": "1", "name": "X"},
            "DELIVERY",
            "address",
        ),
        ("SUMMARY", {"product": "espresso-beans", "quantity": "99"}, "PRODUCT", "between 1 and 10"),
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


def test_summary_closes_the_flow_with_the_params(catalog: Catalog) -> None:
    data = {"product": "espresso-beans", "quantity": "2", **ADDRESS}
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
        {"flow_screen": "PRODUCT", "flow_data": {"product": "green-tea"}, "flow_token": TOKEN},
        channel="whatsapp",
    )
    messages, events = run_action(ActionFlowStep(), tracker)
    assert messages[0]["custom"][FLOW_RESPONSE_KEY]["screen"] == "QUANTITY"
    assert events == []
    messages, _ = run_action(ActionFlowStep(), make_tracker("flow_init", {"flow_token": TOKEN}))
    assert messages[0]["custom"][FLOW_RESPONSE_KEY] == product_screen(catalog)


@pytest.mark.usefixtures("no_stripe")
def test_completion_makes_one_order_per_token() -> None:
    params = {"product": "espresso-beans", "quantity": "2", **ADDRESS}
    completion = {"flow_token": TOKEN, "flow_data": params}
    messages, events = run_action(ActionFlowStep(), make_tracker("flow_completed", completion))
    slots = slot_updates(events)
    assert slots["order_flow_token"] == TOKEN
    assert slots["order_delivery"] == ADDRESS
    assert slots["order_total"] == 2580
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


def test_invalid_completion_is_explained() -> None:
    completion = {"flow_token": TOKEN, "flow_data": {"product": "a-pony", "quantity": "1"}}
    messages, events = run_action(ActionFlowStep(), make_tracker("flow_completed", completion))
    assert "couldn't take that order" in messages[0]["text"] and events == []


def test_flow_error_apologises_and_offers_to_order_again() -> None:
    messages, events = run_action(
        ActionFlowStep(), make_tracker("flow_error", {"flow_screen": "QUANTITY"})
    )
    assert messages[0]["buttons"] == [{"title": "Order again", "payload": "/order"}]
    assert events == []
