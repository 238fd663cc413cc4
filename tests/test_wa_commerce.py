"""Product messages from the shop's Meta catalog: the actions' custom message, the bodies the
connector builds from it (checked by the Graph emulator's own rules, which hold Meta's limits),
the emulator's refusals, and the output channel sending them through the fake Graph API."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from actions.catalog_messages import catalog_products_message, product_message
from connectors.settings import WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.whatsapp.commerce import catalog_bodies
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.output import WhatsAppOutput
from sandbox.graph_api import GraphApiEmulator, shop_catalog_items
from sandbox.message_rules import Account, InvalidMessage, check_message
from sandbox.meta import CATALOG_ID
from shop_contract.catalog import default_catalog
from shop_contract.custom_messages import CATALOG_PRODUCTS_KEY

CUSTOMER = "15550002222"
ACCOUNT = Account(lambda _: None, lambda _: None, shop_catalog_items().get)
RETAILER_IDS = sorted(shop_catalog_items()[CATALOG_ID])


def request_of(message: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = message[CATALOG_PRODUCTS_KEY]
    return request


def test_the_catalog_is_one_product_list_in_the_catalogs_sections() -> None:
    message = catalog_products_message(default_catalog(), "text list", "Also: the club")

    (body,) = catalog_bodies(request_of(message), CATALOG_ID)

    check_message(body, ACCOUNT)
    interactive = body["interactive"]
    assert interactive["type"] == "product_list"
    assert interactive["header"] == {"type": "text", "text": "Our products"}
    assert interactive["body"]["text"].endswith("send me the cart.\nAlso: the club")
    sections = interactive["action"]["sections"]
    assert interactive["action"]["catalog_id"] == CATALOG_ID
    assert [s["title"] for s in sections] == ["Coffee", "Tea", "Brewing gear", "Gift cards"]
    assert [i["product_retailer_id"] for i in sections[0]["product_items"]] == [
        "BL-ESP-250",
        "BL-FIL-250",
        "BL-DEC-250",
    ]


def test_a_product_question_is_the_single_product_message() -> None:
    espresso = default_catalog().get("espresso-beans")
    assert espresso is not None

    (body,) = catalog_bodies(request_of(product_message(espresso, "€12.90")), CATALOG_ID)

    check_message(body, ACCOUNT)
    assert body["interactive"] == {
        "type": "product",
        "body": {"text": "€12.90"},
        "action": {"catalog_id": CATALOG_ID, "product_retailer_id": "BL-ESP-250"},
    }


def test_a_big_catalog_is_the_catalog_message_with_a_thumbnail() -> None:
    many = tuple(
        replace(p, id=f"p{n}", name=f"P {n}", synonyms=(), retailer_id=f"R{n}")
        for n, p in enumerate([default_catalog().products[0]] * 31)
    )
    big = replace(default_catalog(), products=many)

    (body,) = catalog_bodies(request_of(catalog_products_message(big, "x", "")), CATALOG_ID)

    assert body["interactive"]["type"] == "catalog_message"
    assert body["interactive"]["action"] == {
        "name": "catalog_message",
        "parameters": {"thumbnail_product_retailer_id": "R0"},
    }
    check_message(body, Account(lambda _: None, lambda _: None, {CATALOG_ID: frozenset()}.get))


def test_long_lists_are_cut_into_messages_within_metas_limits() -> None:
    sections = [
        {"title": f"Section {n}", "retailer_ids": [f"R{n}-{i}" for i in range(4)]}
        for n in range(12)
    ]
    sections.append(
        {"title": "A very long section title indeed", "retailer_ids": [f"L{i}" for i in range(35)]}
    )
    request = {"kind": "product_list", "header": "H" * 70, "body": "Pick", "sections": sections}
    items = frozenset(i for s in sections for i in s["retailer_ids"])

    bodies = catalog_bodies(request, CATALOG_ID)

    for body in bodies:
        check_message(body, Account(lambda _: None, lambda _: None, {CATALOG_ID: items}.get))
    sent = [
        i["product_retailer_id"]
        for b in bodies
        for s in b["interactive"]["action"]["sections"]
        for i in s["product_items"]
    ]
    assert sent == [i for s in sections for i in s["retailer_ids"]]  # all, in order, once
    assert len(bodies) == 3  # 83 products: 30, 30 and 23
    assert bodies[0]["interactive"]["header"]["text"].endswith("… (1/3)")


@pytest.mark.parametrize(
    "request_",
    [
        {},
        {"kind": "product"},
        {"kind": "product_list", "body": "b", "sections": "nope"},
        {"kind": "catalog", "body": ""},
        {"kind": "carousel", "body": "b"},
    ],
)
def test_unusable_requests_build_nothing(request_: dict[str, Any]) -> None:
    assert catalog_bodies(request_, CATALOG_ID) == []


def product_list(**changes: Any) -> dict[str, Any]:
    interactive: dict[str, Any] = {
        "type": "product_list",
        "header": {"type": "text", "text": "Our products"},
        "body": {"text": "Pick"},
        "action": {
            "catalog_id": CATALOG_ID,
            "sections": [
                {"title": "Coffee", "product_items": [{"product_retailer_id": "BL-ESP-250"}]}
            ],
        },
    }
    interactive.update(changes)
    return {"type": "interactive", "interactive": interactive}


def sections_of(count: int, per: int) -> dict[str, Any]:
    ids = (RETAILER_IDS * 10)[: count * per]
    return {
        "catalog_id": CATALOG_ID,
        "sections": [
            {
                "title": f"S{n}",
                "product_items": [{"product_retailer_id": i} for i in ids[n * per : (n + 1) * per]],
            }
            for n in range(count)
        ],
    }


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (product_list(header=None), 131008, "interactive.header is required"),
        (product_list(header={"type": "image", "text": "x"}), 131009, "header.type must be text"),
        (product_list(body=None), 131008, "interactive.body is required"),
        (
            product_list(action={**sections_of(1, 1), "catalog_id": "999"}),
            131009,
            "catalog 999 is not connected",
        ),
        (product_list(action=sections_of(11, 1)), 131009, "1 to 10 sections"),
        (product_list(action=sections_of(2, 16)), 131009, "at most 30 products"),
        (
            product_list(
                action={
                    "catalog_id": CATALOG_ID,
                    "sections": [
                        {"title": "T", "product_items": [{"product_retailer_id": "NOPE"}]}
                    ],
                }
            ),
            131009,
            "no product 'NOPE' in the catalog",
        ),
        (
            product_list(
                action={
                    "catalog_id": CATALOG_ID,
                    "sections": [{"product_items": [{"product_retailer_id": "BL-ESP-250"}]}],
                }
            ),
            131008,
            "sections[0].title is required",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "product",
                    "header": {"type": "text", "text": "h"},
                    "action": {"catalog_id": CATALOG_ID, "product_retailer_id": "BL-ESP-250"},
                },
            },
            131009,
            "interactive.header is not allowed",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "product",
                    "action": {"catalog_id": CATALOG_ID, "product_retailer_id": "coffee-club"},
                },
            },
            131009,
            "no product 'coffee-club'",
        ),
        (
            {
                "type": "interactive",
                "interactive": {"type": "catalog_message", "action": {"name": "catalog_message"}},
            },
            131008,
            "interactive.body is required",
        ),
    ],
)
def test_the_emulator_refuses_what_meta_refuses(body: dict[str, Any], code: int, says: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        check_message(body, ACCOUNT)
    assert refused.value.code == code and says in refused.value.details


def send(
    graph: GraphApiEmulator, tmp_path: Path, message: dict[str, Any], catalog_id: str | None
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.messages.touch_customer(CUSTOMER, time.time())
    settings = WhatsAppSettings(
        access_token=graph.access_token,
        phone_number_id=graph.phone_number_id,
        app_secrets=("s",),
        verify_token="v",
        api_base=graph.base_url,
        catalog_id=catalog_id,
    )

    async def run() -> None:
        client = GraphClient(
            GraphSettings(settings.api_base, settings.phone_number_id, settings.access_token)
        )
        await WhatsAppOutput(settings, client, store).send_response(CUSTOMER, {"custom": message})
        await client.close()

    asyncio.run(run())


def test_the_output_sends_the_product_list_meta_accepts(
    fake_graph: GraphApiEmulator, tmp_path: Path
) -> None:
    send(fake_graph, tmp_path, catalog_products_message(default_catalog(), "text", ""), CATALOG_ID)

    (accepted,) = fake_graph.accepted()
    assert accepted.recipient == CUSTOMER
    assert accepted.body["interactive"]["type"] == "product_list"


def test_without_a_catalog_id_the_output_sends_the_fallback_text(
    fake_graph: GraphApiEmulator, tmp_path: Path
) -> None:
    send(
        fake_graph,
        tmp_path,
        catalog_products_message(default_catalog(), "Here's what we have", ""),
        None,
    )

    (accepted,) = fake_graph.accepted()
    assert accepted.body["type"] == "text"
    assert accepted.body["text"] == {"body": "Here's what we have"}


def test_the_emulator_answers_a_product_for_another_catalog_with_metas_error(
    fake_graph: GraphApiEmulator, tmp_path: Path
) -> None:
    espresso = default_catalog().get("espresso-beans")
    assert espresso is not None
    send(fake_graph, tmp_path, product_message(espresso, "x"), "31337")

    assert fake_graph.accepted() == []
    (refused,) = fake_graph.messages()
    assert refused["interactive"]["action"]["catalog_id"] == "31337"
