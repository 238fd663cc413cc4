"""Loads and validates `data/shop.yml`, the one source of the shop's facts.

Opening hours, delivery destinations, payment methods, returns, contact and subscription
terms: the bot's answers are generated from these (actions/shop_answers.py). A broken file
stops the action server with a ShopError naming the field, like the catalog does. Unknown
fields are refused too, so a fact cannot be added here without an answer that uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shop_contract.data_files import read_yaml

DEFAULT_SHOP_PATH = Path(__file__).resolve().parent.parent / "data" / "shop.yml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CLOSED = "closed"
_HOURS = re.compile(r"^(?P<opens>\d\d:\d\d)-(?P<closes>\d\d:\d\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,}$")


class ShopError(ValueError):
    """data/shop.yml is missing, unreadable or holds an invalid fact."""


@dataclass(frozen=True)
class Hours:
    """One day's opening time and closing time (local to the shop's time zone)."""

    opens: time
    closes: time

    def __str__(self) -> str:
        return f"{self.opens:%H:%M}–{self.closes:%H:%M}"


@dataclass(frozen=True)
class OpeningHours:
    time_zone: str
    days: tuple[Hours | None, ...]  # Monday first; None on a closed day

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def open_until(self, now: datetime) -> time | None:
        """The closing time when the shop is open at `now` (any time zone), else None."""
        local = now.astimezone(self.zone)
        hours = self.days[local.weekday()]
        if hours and hours.opens <= local.time() < hours.closes:
            return hours.closes
        return None

    def next_opening(self, now: datetime) -> datetime:
        """When the shop opens next after `now`, in its time zone."""
        local = now.astimezone(self.zone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            hours = self.days[day.weekday()]
            if hours is None:
                continue
            opening = datetime.combine(day, hours.opens, tzinfo=self.zone)
            if opening > local:
                return opening
        raise AssertionError("parse_shop requires at least one open day")


@dataclass(frozen=True)
class Destination:
    """A country the shop delivers to, what it costs (minor units) and how long it takes."""

    name: str
    aliases: tuple[str, ...]
    cost: int
    min_days: int
    max_days: int
    free_from: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Payment:
    accepted: tuple[str, ...]
    not_accepted: tuple[str, ...]


@dataclass(frozen=True)
class Returns:
    days: int
    conditions: str
    how: str
    refund: str
    faulty: str


@dataclass(frozen=True)
class Contact:
    email: str
    phone: str
    address: str


@dataclass(frozen=True)
class Subscriptions:
    cancellation: str
    manage_url: str | None = None


@dataclass(frozen=True)
class Shop:
    """Every fact the bot answers from, validated."""

    name: str
    hours: OpeningHours
    destinations: tuple[Destination, ...]
    payment: Payment
    returns: Returns
    contact: Contact
    subscriptions: Subscriptions

    def destination(self, mention: str) -> Destination | None:
        """The destination a customer means by `mention` (name or alias, any case)."""
        wanted = _key(mention)
        return next((d for d in self.destinations if wanted in {_key(n) for n in d.names}), None)


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def _mapping(
    raw: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`raw` as a dict holding every required field and no unknown one."""
    if not isinstance(raw, dict):
        raise ShopError(f"{where}: expected a mapping of fields, got {raw!r}")
    for field in required:
        if field not in raw:
            raise ShopError(f"{where}: missing field '{field}'")
    unknown = sorted(str(k) for k in raw if k not in required + optional)
    if unknown:
        known = ", ".join(required + optional)
        raise ShopError(f"{where}: unknown field '{unknown[0]}' (known: {known})")
    return raw


def _text(raw: dict[str, Any], field: str, where: str) -> str:
    value = raw[field]
    if not isinstance(value, str) or not value.strip():
        raise ShopError(f"{where}.{field}: must be non-empty text, got {value!r}")
    return value.strip()


def _count(raw: dict[str, Any], field: str, where: str, minimum: int = 0) -> int:
    value = raw[field]
    # bool is an int subclass: reject True where a number is expected.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ShopError(f"{where}.{field}: must be a whole number ≥ {minimum}, got {value!r}")
    return value


def _texts(
    raw: dict[str, Any], field: str, where: str, allow_empty: bool = True
) -> tuple[str, ...]:
    value = raw[field]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ShopError(f"{where}.{field}: must be a list of non-empty texts, got {value!r}")
    if not value and not allow_empty:
        raise ShopError(f"{where}.{field}: must name at least one")
    return tuple(v.strip() for v in value)


def _hours(value: Any, where: str) -> Hours | None:
    if value == CLOSED:
        return None
    match = _HOURS.match(value) if isinstance(value, str) else None
    if match is None:
        raise ShopError(f'{where}: must be "HH:MM-HH:MM" (quoted) or {CLOSED}, got {value!r}')
    try:
        opens, closes = (time.fromisoformat(match[g]) for g in ("opens", "closes"))
    except ValueError:
        raise ShopError(f"{where}: {value!r} is not a time of day") from None
    if opens >= closes:
        raise ShopError(f"{where}: opens at {opens:%H:%M} but closes at {closes:%H:%M}")
    return Hours(opens, closes)


def _opening_hours(raw: Any) -> OpeningHours:
    raw = _mapping(raw, "opening_hours", ("time_zone", *WEEKDAYS))
    time_zone = _text(raw, "time_zone", "opening_hours")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ShopError(
            f"opening_hours.time_zone: unknown time zone {time_zone!r} "
            "(an IANA name like Europe/Berlin)"
        ) from None
    days = tuple(_hours(raw[day], f"opening_hours.{day}") for day in WEEKDAYS)
    if not any(days):
        raise ShopError("opening_hours: every day is closed; open at least one")
    return OpeningHours(time_zone, days)


def _destination(raw: Any, index: int) -> Destination:
    where = f"delivery[{index}]"
    raw = _mapping(raw, where, ("name", "aliases", "cost", "days"), ("free_from",))
    name = _text(raw, "name", where)
    where = f"delivery '{name}'"
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
        free_from = _count(raw, "free_from", where, minimum=1)
    return Destination(
        name=name,
        aliases=_texts(raw, "aliases", where),
        cost=_count(raw, "cost", where),
        min_days=days[0],
        max_days=days[1],
        free_from=free_from,
    )


def _destinations(raw: Any) -> tuple[Destination, ...]:
    if not isinstance(raw, list) or not raw:
        raise ShopError("delivery: expected a list of destinations")
    destinations = tuple(_destination(item, i) for i, item in enumerate(raw))
    owners: dict[str, str] = {}
    for destination in destinations:
        for name in destination.names:
            owner = owners.setdefault(_key(name), destination.name)
            if owner != destination.name:
                raise ShopError(f"delivery: '{name}' names both '{owner}' and '{destination.name}'")
    return destinations


def _contact(raw: Any) -> Contact:
    raw = _mapping(raw, "contact", ("email", "phone", "address"))
    email = _text(raw, "email", "contact")
    if not _EMAIL.match(email):
        raise ShopError(f"contact.email: {email!r} is not an e-mail address")
    phone = raw["phone"]
    if not isinstance(phone, str) or not _PHONE.match(phone.strip()):
        raise ShopError(
            f'contact.phone: must be a quoted phone number like "+49 30 1234567", got {phone!r}'
        )
    return Contact(email, phone.strip(), _text(raw, "address", "contact"))


def _subscriptions(raw: Any) -> Subscriptions:
    raw = _mapping(raw, "subscriptions", ("cancellation",), ("manage_url",))
    manage_url = None
    if "manage_url" in raw:
        manage_url = _text(raw, "manage_url", "subscriptions")
        if not manage_url.startswith("https://"):
            raise ShopError(
                f"subscriptions.manage_url: must be an https:// link, got {manage_url!r}"
            )
    return Subscriptions(_text(raw, "cancellation", "subscriptions"), manage_url)


def parse_shop(document: Any) -> Shop:
    """Validates a parsed shop document; raises ShopError naming the first problem."""
    sections = (
        "name",
        "opening_hours",
        "delivery",
        "payment",
        "returns",
        "contact",
        "subscriptions",
    )
    raw = _mapping(document, "shop", sections)
    payment = _mapping(raw["payment"], "payment", ("accepted", "not_accepted"))
    returns = _mapping(raw["returns"], "returns", ("days", "conditions", "how", "refund", "faulty"))
    return Shop(
        name=_text(raw, "name", "shop"),
        hours=_opening_hours(raw["opening_hours"]),
        destinations=_destinations(raw["delivery"]),
        payment=Payment(
            accepted=_texts(payment, "accepted", "payment", allow_empty=False),
            not_accepted=_texts(payment, "not_accepted", "payment"),
        ),
        returns=Returns(
            days=_count(returns, "days", "returns", minimum=1),
            conditions=_text(returns, "conditions", "returns"),
            how=_text(returns, "how", "returns"),
            refund=_text(returns, "refund", "returns"),
            faulty=_text(returns, "faulty", "returns"),
        ),
        contact=_contact(raw["contact"]),
        subscriptions=_subscriptions(raw["subscriptions"]),
    )


def load_shop(path: Path = DEFAULT_SHOP_PATH) -> Shop:
    """Reads and validates the shop file."""
    return parse_shop(read_yaml(path, ShopError, "shop"))


@lru_cache(maxsize=1)
def default_shop() -> Shop:
    """The shop's facts, loaded once per process."""
    return load_shop()
