"""Loads and validates `data/catalog.yml`, the one source of products and prices.

Both processes import this module: the action server (orders, Stripe line items) and the
Rasa server's connector (validating Flow screen data). A broken catalog stops start-up with
a message that names the product and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from shop_contract.data_files import read_yaml

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "catalog.yml"
MODES = ("payment", "subscription")
INTERVALS = ("day", "week", "month", "year")
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CURRENCY_PATTERN = re.compile(r"^[a-z]{3}$")
# Meta's content id of an item (its `retailer_id`): up to 100 characters, no outer spaces.
_RETAILER_ID_PATTERN = re.compile(r"^\S(?:.{0,98}\S)?$")
SECTION_TITLE_LIMIT = 24  # a multi-product message's section title (Meta's limit)
DEFAULT_SECTION = "Products"
DEFAULT_MAX_LINES = 10
# Stripe Checkout takes at most 20 recurring and 20 one-time line items in subscription mode
# (100 in payment mode): a limit within both keeps every order payable in one session.
MOST_LINES = 20


class CatalogError(ValueError):
    """The catalog file is missing, unreadable or contains an invalid product."""


@dataclass(frozen=True)
class Product:
    """One thing the shop sells, priced in the currency's minor unit."""

    id: str
    name: str
    description: str
    stripe_price: str
    unit_amount: int
    currency: str
    mode: str
    shipping: bool
    max_quantity: int
    synonyms: tuple[str, ...] = ()
    interval: str | None = None
    retailer_id: str | None = None  # its item in the shop's Meta catalog, if it is there
    section: str = DEFAULT_SECTION  # its group in a multi-product message

    @property
    def is_subscription(self) -> bool:
        return self.mode == "subscription"


@dataclass(frozen=True)
class Catalog:
    """The validated product list, looked up by id or by any name a customer may use."""

    products: tuple[Product, ...]
    max_lines: int = DEFAULT_MAX_LINES  # most different products one order may hold

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __len__(self) -> int:
        return len(self.products)

    @property
    def currency(self) -> str:
        return self.products[0].currency

    def get(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        return next((p for p in self.products if p.id == product_id), None)

    def by_retailer_id(self, retailer_id: str) -> Product | None:
        """The product sold as this item of the Meta catalog, or None."""
        return next((p for p in self.products if p.retailer_id == retailer_id), None)

    @property
    def in_meta_catalog(self) -> tuple[Product, ...]:
        """The products that are items of the Meta catalog, in the file's order."""
        return tuple(p for p in self.products if p.retailer_id is not None)

    def find(self, mention: str) -> Product | None:
        """The product a customer means by `mention` (id, name or synonym; any case)."""
        wanted = " ".join(mention.lower().split())
        for product in self.products:
            names = {product.id, product.name.lower(), *(s.lower() for s in product.synonyms)}
            if wanted in names:
                return product
        return None


def _require(raw: dict[str, Any], field: str, kind: type, where: str) -> Any:
    if field not in raw:
        raise CatalogError(f"{where}: missing field '{field}'")
    value = raw[field]
    # bool is an int subclass: reject True where a number is expected.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogError(f"{where}: '{field}' must be {kind.__name__}, got {value!r}")
    return value


def _parse_product(raw: Any, index: int) -> Product:
    where = f"product #{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping of fields, got {raw!r}")
    product_id = _require(raw, "id", str, where)
    where = f"product '{product_id}'"
    if not _ID_PATTERN.match(product_id):
        raise CatalogError(f"{where}: id must be lower-case letters, digits and dashes")
    mode = _require(raw, "mode", str, where)
    if mode not in MODES:
        raise CatalogError(f"{where}: mode must be one of {', '.join(MODES)}, got '{mode}'")
    interval = raw.get("interval")
    if mode == "subscription" and interval not in INTERVALS:
        raise CatalogError(f"{where}: a subscription needs interval: {'/'.join(INTERVALS)}")
    if mode == "payment" and interval is not None:
        raise CatalogError(f"{where}: interval is only for subscriptions")
    stripe_price = _require(raw, "stripe_price", str, where)
    if not stripe_price.startswith("price_"):
        raise CatalogError(f"{where}: stripe_price must be a Stripe Price id (price_...)")
    unit_amount = _require(raw, "unit_amount", int, where)
    if unit_amount <= 0:
        raise CatalogError(f"{where}: unit_amount must be a positive amount in cents")
    currency = _require(raw, "currency", str, where)
    if not _CURRENCY_PATTERN.match(currency):
        raise CatalogError(f"{where}: currency must be a lower-case ISO 4217 code like 'eur'")
    max_quantity = _require(raw, "max_quantity", int, where)
    if not 1 <= max_quantity <= 99:
        raise CatalogError(f"{where}: max_quantity must be between 1 and 99")
    synonyms = raw.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
        raise CatalogError(f"{where}: synonyms must be a list of strings")
    retailer_id = raw.get("retailer_id")
    if retailer_id is not None and not (
        isinstance(retailer_id, str) and _RETAILER_ID_PATTERN.match(retailer_id)
    ):
        raise CatalogError(
            f"{where}: retailer_id must be the item's content id in the Meta catalog "
            "(1-100 characters, no spaces at either end)"
        )
    section = raw.get("section", DEFAULT_SECTION)
    if not isinstance(section, str) or not 1 <= len(section.strip()) <= SECTION_TITLE_LIMIT:
        raise CatalogError(
            f"{where}: section must be a title of 1-{SECTION_TITLE_LIMIT} characters"
        )
    return Product(
        id=product_id,
        name=_require(raw, "name", str, where),
        description=_require(raw, "description", str, where),
        stripe_price=stripe_price,
        unit_amount=unit_amount,
        currency=currency,
        mode=mode,
        shipping=_require(raw, "shipping", bool, where),
        max_quantity=max_quantity,
        synonyms=tuple(synonyms),
        interval=interval,
        retailer_id=retailer_id,
        section=section.strip(),
    )


def parse_catalog(document: Any) -> Catalog:
    """Validates a parsed catalog document; raises CatalogError naming the first problem."""
    if not isinstance(document, dict) or not isinstance(document.get("products"), list):
        raise CatalogError("catalog: expected a top-level 'products' list")
    products = tuple(_parse_product(raw, i) for i, raw in enumerate(document["products"]))
    if not products:
        raise CatalogError("catalog: 'products' is empty")
    seen_ids: set[str] = set()
    seen_names: dict[str, str] = {}
    for product in products:
        if product.id in seen_ids:
            raise CatalogError(f"catalog: duplicate product id '{product.id}'")
        seen_ids.add(product.id)
        for name in (product.name, *product.synonyms):
            key = " ".join(name.lower().split())
            owner = seen_names.setdefault(key, product.id)
            if owner != product.id:
                raise CatalogError(f"catalog: '{name}' names both '{owner}' and '{product.id}'")
    retailer_ids = [p.retailer_id for p in products if p.retailer_id is not None]
    for retailer_id in retailer_ids:
        if retailer_ids.count(retailer_id) > 1:
            raise CatalogError(f"catalog: retailer_id '{retailer_id}' is given to two products")
    currencies = {p.currency for p in products}
    if len(currencies) > 1:
        raise CatalogError(
            "catalog: all products must share one currency (Stripe Checkout cannot mix "
            f"currencies in one session), found {', '.join(sorted(currencies))}"
        )
    max_lines = document.get("max_lines_per_order", DEFAULT_MAX_LINES)
    if (
        not isinstance(max_lines, int)
        or isinstance(max_lines, bool)
        or not 1 <= max_lines <= MOST_LINES
    ):
        raise CatalogError(
            f"catalog: max_lines_per_order must be a whole number from 1 to {MOST_LINES} "
            f"(Stripe Checkout's limit), got {max_lines!r}"
        )
    return Catalog(products, max_lines)


def load_catalog(path: Path = DEFAULT_CATALOG_PATH) -> Catalog:
    """Reads and validates the catalog file."""
    return parse_catalog(read_yaml(path, CatalogError, "catalog"))


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The shop's catalog, loaded once per process."""
    return load_catalog()
