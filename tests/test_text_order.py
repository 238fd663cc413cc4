"""Typed orders read into (product, quantity) lines: the NLU data's own lookup table and
quantity regex find the entities (as RegexEntityExtractor and EntitySynonymMapper do with
data/nlu.yml), and actions/orders/text_order.py pairs them."""

from __future__ import annotations

import pytest

from actions.orders.text_order import Request, Wanted, number, read_request
from shop_contract.catalog import default_catalog
from tests.support.nlu_entities import entities


def request(text: str) -> Request:
    catalog = default_catalog()

    def product_id(value: str) -> str | None:
        product = catalog.get(value) or catalog.find(value)
        return product.id if product else None

    return read_request(text, entities(text), product_id)


def lines(text: str) -> list[tuple[str, int | None]]:
    return [(w.product, w.quantity) for w in request(text).wanted]


@pytest.mark.parametrize(
    ("said", "value"),
    [("2", 2), ("3x", 3), ("x3", 3), ("×2", 2), ("two", 2), ("Three", 3), ("thre", 3),
     ("a dozen", 12), ("half a  dozen", 6), ("ten", 10), ("bag", None)],
)  # fmt: skip
def test_numbers_as_digits_and_words(said: str, value: int | None) -> None:
    assert number(said) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one espresso and two filter coffee", [("espresso-beans", 1), ("filter-coffee", 2)]),
        ("I'd like 2 bags of decaf", [("decaf-beans", 2)]),
        ("3x green tea, 1 gift card", [("green-tea", 3), ("gift-card", 1)]),
        ("espresso x2 and decaf x3", [("espresso-beans", 2), ("decaf-beans", 3)]),
        ("espresso 2 decaf 3", [("espresso-beans", 2), ("decaf-beans", 3)]),
        ("2 espresso 3 decaf", [("espresso-beans", 2), ("decaf-beans", 3)]),
        ("a espreso and 2 filter cofee pls", [("espresso-beans", None), ("filter-coffee", 2)]),
        ("can i get two packs of green tee and a pour over kit", [
            ("green-tea", 2), ("pour-over-kit", None)]),
        ("four decaf, one voucher", [("decaf-beans", 4), ("gift-card", 1)]),
        ("a dozen espresso", [("espresso-beans", 12)]),
        ("gimme dark roast: 3", [("espresso-beans", 3)]),
        ("2 gift card 25 eur", [("gift-card", 2)]),  # the 25 is part of the product's name
        ("I want the sencha", [("green-tea", None)]),
        ("1 espresso and 2 more espresso", [("espresso-beans", 3)]),  # one line, added up
    ],
)  # fmt: skip
def test_products_with_their_quantities(text: str, expected: list[tuple[str, int | None]]) -> None:
    assert lines(text) == expected
    assert request(text).lone_quantity is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add two decaf", [("decaf-beans", 2)]),
        ("add one more green tea pls", [("green-tea", 1)]),
        ("remove the tea", [("green-tea", None)]),
        ("take out 1 espresso", [("espresso-beans", 1)]),
        ("change espresso to 2", [("espresso-beans", 2)]),
        ("make the filter coffee three", [("filter-coffee", 3)]),
    ],
)
def test_edits_name_products_and_quantities(
    text: str, expected: list[tuple[str, int | None]]
) -> None:
    assert lines(text) == expected


@pytest.mark.parametrize(("text", "quantity"), [("make it three", 3), ("make it 4 pls", 4)])
def test_a_quantity_without_a_product_is_returned_on_its_own(text: str, quantity: int) -> None:
    assert request(text) == Request((), quantity)


def test_a_button_payload_without_positions_still_names_its_product() -> None:
    entities = [{"entity": "product", "value": "green-tea"}]
    assert read_request('/order{"product": "green-tea"}', entities, lambda v: v).wanted == (
        Wanted("green-tea", None),
    )
