"""What a typed order asks for: the products it names, each with the quantity said for it.

The NLU finds the pieces (data/nlu.yml): `product` entities from the catalog's lookup table
(typos included) and `quantity` entities from a regex (digits, "3x"/"x3", number words, "a
dozen"). This module only pairs them, by where they sit in the text, so it stays small and
deterministic:

- a quantity belongs to the product right after it when only filler ("bags of", "more",
  "x", punctuation) stands between them ("2 bags of decaf", "3x green tea"), and to the
  product right before it when only filler stands between that one and it ("espresso x2",
  "change espresso to 2");
- a quantity that could go either way ("espresso 2 decaf 3") follows the direction the
  message's unambiguous quantities take (forward when there are none);
- a product with no quantity gets none (the caller reads it as 1, or as "the whole line"
  for a removal); a quantity with no product ("make it three") is returned on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "thre": 3,
    "four": 4,
    "five": 5,
    "fiv": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
    "a dozen": 12,
    "half a dozen": 6,
}
# What may stand between a quantity and its product: units, "of", "more", "to", "x", marks.
_FILLER = re.compile(
    r"(?:\s|[,:;=*×x()\-]|\b(?:bags?|packs?|packets?|boxe?s?|tins?|pcs|pieces?|units?|"
    r"of|the|more|extra|to|another|additional)\b)*",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Mention:
    """An entity found in the text: where it starts and ends, and its value."""

    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Wanted:
    """A product the message names, with the quantity said for it (None when none was)."""

    product: str
    quantity: int | None


@dataclass(frozen=True)
class Request:
    """Everything a message asks for: named products and a quantity said on its own."""

    wanted: tuple[Wanted, ...]
    lone_quantity: int | None = None


def number(said: str) -> int | None:
    """'2' -> 2, '3x' / 'x3' / '×3' -> 3, 'two' -> 2, 'a dozen' -> 12; None when it is none."""
    words = " ".join(said.lower().split())
    if words in NUMBER_WORDS:
        return NUMBER_WORDS[words]
    digits = _DIGITS.search(words)
    return int(digits.group()) if digits else None


def mentions(entities: Iterable[Mapping[str, Any]], name: str) -> list[Mention]:
    """The entities called `name`, in text order. Entities without a position (a button's
    `/order{"product": …}` payload) are placed after the positioned ones, in their order."""
    found = []
    unplaced = 0
    for entity in entities:
        if entity.get("entity") != name or entity.get("value") is None:
            continue
        start, end = entity.get("start"), entity.get("end")
        if not isinstance(start, int) or not isinstance(end, int):
            unplaced += 1
            start = end = 1_000_000 + unplaced
        found.append(Mention(start, end, str(entity["value"])))
    return sorted(found, key=lambda m: m.start)


def _only_filler(text: str) -> bool:
    return _FILLER.fullmatch(text) is not None


def pair(text: str, products: list[Mention], quantities: list[Mention]) -> Request:
    """Pairs quantities with products by position (see the module's docstring)."""
    inside = [q for q in quantities if not any(p.start <= q.start < p.end for p in products)]
    links: list[tuple[Mention, int | None, int | None]] = []  # quantity, forward, backward
    for quantity in inside:
        after = next((i for i, p in enumerate(products) if p.start >= quantity.end), None)
        before = max((i for i, p in enumerate(products) if p.end <= quantity.start), default=None)
        forward = (
            after
            if after is not None and _only_filler(text[quantity.end : products[after].start])
            else None
        )
        backward = (
            before
            if before is not None and _only_filler(text[products[before].end : quantity.start])
            else None
        )
        links.append((quantity, forward, backward))
    forwards = sum(1 for _, f, b in links if f is not None and b is None)
    backwards = sum(1 for _, f, b in links if b is not None and f is None)
    prefer_forward = forwards >= backwards
    said: dict[int, int] = {}  # product index -> quantity
    lone = None
    for quantity, forward, backward in links:
        value = number(quantity.value)
        if value is None:
            continue
        if forward is not None and backward is not None:
            target: int | None = forward if prefer_forward else backward
        else:
            target = forward if forward is not None else backward
        if target is not None:
            said.setdefault(target, value)
        elif not products:
            lone = value
    merged: dict[str, int | None] = {}
    for index, product in enumerate(products):
        amount = said.get(index)
        if product.value in merged:
            amount = (merged[product.value] or 1) + (amount or 1)
        merged[product.value] = amount
    return Request(tuple(Wanted(p, q) for p, q in merged.items()), lone)


def read_request(
    text: str, entities: Iterable[Mapping[str, Any]], product_id: Callable[[str], str | None]
) -> Request:
    """The request in a parsed message (its text and NLU entities). `product_id` turns a
    `product` entity's value into a catalog id (None: not a product, left out)."""
    listed = list(entities)
    products = []
    for mention in mentions(listed, "product"):
        found = product_id(mention.value)
        if found is not None:
            products.append(Mention(mention.start, mention.end, found))
    return pair(text, products, mentions(listed, "quantity"))
