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
from shop_contract.delivery import Destination, parse_destinations
from shop_contract.shop_fields import ShopError as ShopError  # callers catch it from here
from shop_contract.shop_fields import count, fields, name_key, text, texts

DEFAULT_SHOP_PATH = Path(__file__).resolve().parent.parent / "data" / "shop.yml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CLOSED = "closed"
_HOURS = re.compile(r"^(?P<opens>\d\d:\d\d)-(?P<closes>\d\d:\d\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,}$")


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
    # The shop's WhatsApp number, when given: where Stripe's customer portal leads back to
    # (wa.me). `phone` may be a landline, so it is never used for that.
    whatsapp: str | None = None


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
        wanted = name_key(mention)
        return next(
            (d for d in self.destinations if wanted in {name_key(n) for n in d.names}), None
        )


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
    raw = fields(raw, "opening_hours", ("time_zone", *WEEKDAYS))
    time_zone = text(raw, "time_zone", "opening_hours")
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


def _contact(raw: Any) -> Contact:
    raw = fields(raw, "contact", ("email", "phone", "address"), ("whatsapp",))
    email = text(raw, "email", "contact")
    if not _EMAIL.match(email):
        raise ShopError(f"contact.email: {email!r} is not an e-mail address")
    phone = raw["phone"]
    if not isinstance(phone, str) or not _PHONE.match(phone.strip()):
        raise ShopError(
            f'contact.phone: must be a quoted phone number like "+49 30 1234567", got {phone!r}'
        )
    whatsapp = raw.get("whatsapp")
    if whatsapp is not None and not (
        isinstance(whatsapp, str) and whatsapp.startswith("+") and _PHONE.match(whatsapp)
    ):
        raise ShopError(
            "contact.whatsapp: must be the shop's WhatsApp number, quoted, in international "
            f'form like "+49 151 23456789", got {whatsapp!r}'
        )
    return Contact(
        email,
        phone.strip(),
        text(raw, "address", "contact"),
        whatsapp.strip() if whatsapp is not None else None,
    )


def _subscriptions(raw: Any) -> Subscriptions:
    raw = fields(raw, "subscriptions", ("cancellation",), ("manage_url",))
    manage_url = None
    if "manage_url" in raw:
        manage_url = text(raw, "manage_url", "subscriptions")
        if not manage_url.startswith("https://"):
            raise ShopError(
                f"subscriptions.manage_url: must be an https:// link, got {manage_url!r}"
            )
    return Subscriptions(text(raw, "cancellation", "subscriptions"), manage_url)


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
    raw = fields(document, "shop", sections)
    payment = fields(raw["payment"], "payment", ("accepted", "not_accepted"))
    returns = fields(raw["returns"], "returns", ("days", "conditions", "how", "refund", "faulty"))
    return Shop(
        name=text(raw, "name", "shop"),
        hours=_opening_hours(raw["opening_hours"]),
        destinations=parse_destinations(raw["delivery"]),
        payment=Payment(
            accepted=texts(payment, "accepted", "payment", allow_empty=False),
            not_accepted=texts(payment, "not_accepted", "payment"),
        ),
        returns=Returns(
            days=count(returns, "days", "returns", minimum=1),
            conditions=text(returns, "conditions", "returns"),
            how=text(returns, "how", "returns"),
            refund=text(returns, "refund", "returns"),
            faulty=text(returns, "faulty", "returns"),
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
