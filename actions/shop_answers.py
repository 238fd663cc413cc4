"""The bot's answers about the shop, written from data/shop.yml and the catalog.

Pure functions of the shop's facts (and the clock, passed in), so every answer can be
checked against the file it comes from (tests/test_shop_answers.py checks that each fact
in data/shop.yml reaches an answer). The actions that send them are in faq_actions.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from actions.orders.money import format_amount
from shop_contract.catalog import Catalog, Product
from shop_contract.delivery import Destination
from shop_contract.shop import WEEKDAYS, Hours, OpeningHours, Shop

SECURE_PAYMENT = (
    "You pay on Stripe's secure payment page, from the link I send: we never see your card details."
)


def joined(items: Iterable[str], last: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = list(items)
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def days_text(destination: Destination) -> str:
    low, high = destination.min_days, destination.max_days
    span = f"{low}" if low == high else f"{low}–{high}"
    return f"{span} working day{'' if high == 1 else 's'}"


def delivery_terms(destination: Destination, currency: str) -> str:
    """'€7.90, 2–4 working days' (and the free-delivery threshold when there is one)."""
    terms = f"{format_amount(destination.cost, currency)}, {days_text(destination)}"
    if destination.free_from is not None:
        terms += f"; free for orders from {format_amount(destination.free_from, currency)}"
    return terms


def display_country(mention: str) -> str:
    """A country as the customer wrote it, capitalised when they typed it all lower-case."""
    mention = " ".join(mention.split())
    if not mention.islower():
        return mention
    small = {"and", "of", "the"}
    words = mention.split(" ")
    return " ".join(w if i and w in small else w[:1].upper() + w[1:] for i, w in enumerate(words))


def delivery_answer(shop: Shop, catalog: Catalog, country: str | None = None) -> str:
    """Delivery to the country asked about, or to every destination when none was named."""
    currency = catalog.currency
    if country:
        destination = shop.destination(country)
        if destination is not None:
            return (
                f"Yes, we deliver to {destination.name}: "
                f"{delivery_terms(destination, currency)}. The cost is per order."
            )
        names = joined(d.name for d in shop.destinations)
        return f"Sorry, we don't deliver to {display_country(country)}. We deliver to {names}."
    lines = ["We deliver to:"]
    lines += [f"• {d.name}: {delivery_terms(d, currency)}" for d in shop.destinations]
    lines.append("The cost is per order.")
    digital = [p.name for p in catalog if not p.shipping]
    if digital:
        lines.append(f"{joined(digital)} come{'s' if len(digital) == 1 else ''} by WhatsApp.")
    return "\n".join(lines)


def named_in(text: str, phrases: Iterable[str]) -> list[str]:
    """The phrases `text` mentions as whole words, in any case."""
    return [p for p in phrases if re.search(rf"\b{re.escape(p)}\b", text, re.IGNORECASE)]


def payment_answer(shop: Shop, asked: str = "") -> str:
    """How customers can pay; first a clear no when the question names a method not taken."""
    accepted = f"You can pay with {joined(shop.payment.accepted, 'or')}. {SECURE_PAYMENT}"
    refused = named_in(asked, shop.payment.not_accepted)
    if refused:
        return f"Sorry, we don't take {joined(refused, 'or')}. {accepted}"
    return accepted


def returns_answer(shop: Shop) -> str:
    returns = shop.returns
    return "\n".join(
        [
            f"Returns within {returns.days} days of delivery: {returns.conditions}",
            f"How: {returns.how}",
            f"Refunds: {returns.refund}",
            f"Stale, damaged or wrong items: {returns.faulty}",
        ]
    )


def zone_name(hours: OpeningHours) -> str:
    """'Berlin time' for Europe/Berlin."""
    return hours.time_zone.rsplit("/", 1)[-1].replace("_", " ") + " time"


def week_lines(hours: OpeningHours) -> list[str]:
    """One line per run of days with the same hours: 'Monday–Friday: 09:00–18:00'."""
    runs: list[tuple[int, int, Hours | None]] = []
    for index, day in enumerate(hours.days):
        if runs and runs[-1][2] == day:
            runs[-1] = (runs[-1][0], index, day)
        else:
            runs.append((index, index, day))
    lines = []
    for first, last, day in runs:
        names = WEEKDAYS[first].capitalize()
        if last != first:
            names += f"–{WEEKDAYS[last].capitalize()}"
        lines.append(f"{names}: {day if day else 'closed'}")
    return lines


def when_open(hours: OpeningHours, now: datetime, who: str = "We're") -> str:
    """'We're open now, until 18:00.' or 'We're closed now; we open again Monday at 09:00.'"""
    until = hours.open_until(now)
    if until is not None:
        return f"{who} open now, until {until:%H:%M} ({zone_name(hours)})."
    opening = hours.next_opening(now)
    days_ahead = (opening.date() - now.astimezone(hours.zone).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days_ahead, f"on {opening:%A}")
    return f"{who} closed now and open again {day} at {opening:%H:%M} ({zone_name(hours)})."


def hours_answer(shop: Shop, now: datetime) -> str:
    lines = [f"Our opening hours ({zone_name(shop.hours)}):", *week_lines(shop.hours)]
    return "\n".join([*lines, when_open(shop.hours, now)])


def contact_answer(shop: Shop, now: datetime) -> str:
    contact = shop.contact
    return "\n".join(
        [
            f"You can reach {shop.name}:",
            f"Phone: {contact.phone}",
            f"Email: {contact.email}",
            f"Address: {contact.address}",
            when_open(shop.hours, now, "The team is"),
        ]
    )


def handover_answer(shop: Shop, now: datetime) -> str:
    """What a customer who asked for a person is told where nobody can be told in this chat
    (another channel, or a shop that set up no hand-over): how to reach the team directly,
    rather than a promise that someone will write back."""
    contact = shop.contact
    return (
        f"To talk to a person, please contact the {shop.name} team directly: call "
        f"{contact.phone} or email {contact.email}. {when_open(shop.hours, now, 'They are')}\n"
        "I'm still here for orders, payments and questions about the shop."
    )


def handover_paused_answer(shop: Shop, now: datetime) -> str:
    """What a customer handed over to a person is told: who answers, where and when, and
    that the bot is quiet meanwhile (payment updates still come)."""
    until = shop.hours.open_until(now)
    if until is not None:
        when = f"The team is in now (until {until:%H:%M}), so it shouldn't be long."
    else:
        when = when_open(shop.hours, now, "The team is") + " They'll answer then."
    return (
        f"I've asked the {shop.name} team to take over: a person will answer you here in this "
        f"chat. {when}\n"
        "Until then I'll stay quiet, and everything you write goes straight to them. Updates "
        "about your payments and orders still arrive here."
    )


def handback_answer(shop: Shop, timed_out: bool) -> str:
    """What a customer is told when the conversation comes back to the bot."""
    if timed_out:
        first = (
            f"Nobody from the {shop.name} team has written for a while, so I'm answering here "
            "again. If you still need a person, just ask for one."
        )
    else:
        first = f"The {shop.name} team has handed you back to me, the shop's assistant."
    return f"{first}\nI can help with orders, payments and questions about the shop."


def complaint_answer(shop: Shop) -> str:
    returns = shop.returns
    return (
        f"I'm sorry about that. {returns.faulty}\n"
        f"Anything else can go back within {returns.days} days of delivery: "
        f"{returns.conditions} {returns.how}\n"
        "Would you like to talk to a person?"
    )


def price_text(product: Product) -> str:
    """'€12.90' or '€14.90 every month' for subscriptions."""
    price = format_amount(product.unit_amount, product.currency)
    return f"{price} every {product.interval}" if product.interval else price


def product_answer(product: Product, shop: Shop) -> str:
    """What a product is, what it costs and that it can be ordered: that product only."""
    lines = [
        f"{product.name}: {price_text(product)}.",
        f"{product.description}.",
        f"Available to order now, up to {product.max_quantity} per order.",
    ]
    if product.is_subscription:
        lines.append(shop.subscriptions.cancellation)
    return "\n".join(lines)
