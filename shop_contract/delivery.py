"""The `delivery` section of data/shop.yml: where the shop ships, what it costs, how long.

One source for both what the bot tells customers ("do you deliver to Austria?") and what an
order is charged: the flat rate per destination, free from the destination's `free_from`
order value, sent to Stripe Checkout as the session's shipping option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shop_contract.shop_fields import ShopError, count, fields, name_key, text, texts

_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Destination:
    """A country the shop delivers to, what it costs (minor units) and how long it takes."""

    name: str
    aliases: tuple[str, ...]
    cost: int
    min_days: int
    max_days: int
    free_from: int | None = None
    code: str = ""  # ISO 3166-1 alpha-2, as Stripe's shipping_address_collection wants it

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def shipping_for(self, goods: int) -> int:
        """The delivery charge for goods worth `goods` (minor units): free from `free_from`."""
        if self.free_from is not None and goods >= self.free_from:
            return 0
        return self.cost


def _destination(raw: Any, index: int) -> Destination:
    where = f"delivery[{index}]"
    raw = fields(raw, where, ("name", "code", "aliases", "cost", "days"), ("free_from",))
    name = text(raw, "name", where)
    where = f"delivery '{name}'"
    code = raw["code"]
    if not isinstance(code, str) or not _COUNTRY_CODE.match(code):
        raise ShopError(
            f"{where}.code: must be the country's two-letter ISO code in capitals (DE, AT…), "
            f"got {code!r}"
        )
    days = raw["days"]
    if (
        not isinstance(days, list)
        or len(days) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in days)
        or not 1 <= days[0] <= days[1]
    ):
        raise ShopError(f"{where}.days: must be [fewest, most] working days, got {days!r}")
    free_from = None
    if "free_from" in raw:
        free_from = count(raw, "free_from", where, minimum=1)
    return Destination(
        name=name,
        aliases=texts(raw, "aliases", where),
        cost=count(raw, "cost", where),
        min_days=days[0],
        max_days=days[1],
        free_from=free_from,
        code=code,
    )


def parse_destinations(raw: Any) -> tuple[Destination, ...]:
    """Validates the delivery list; ShopError naming the first problem."""
    if not isinstance(raw, list) or not raw:
        raise ShopError("delivery: expected a list of destinations")
    destinations = tuple(_destination(item, i) for i, item in enumerate(raw))
    owners: dict[str, str] = {}
    codes: dict[str, str] = {}
    for destination in destinations:
        for name in destination.names:
            owner = owners.setdefault(name_key(name), destination.name)
            if owner != destination.name:
                raise ShopError(f"delivery: '{name}' names both '{owner}' and '{destination.name}'")
        owner = codes.setdefault(destination.code, destination.name)
        if owner != destination.name:
            raise ShopError(
                f"delivery: code {destination.code} is both '{owner}' and '{destination.name}'"
            )
    return destinations
