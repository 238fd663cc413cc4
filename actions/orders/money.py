"""Amounts in minor units (as Stripe and the catalog hold them), written for the customer."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_ZERO_DECIMAL_CURRENCIES = frozenset({"jpy", "krw", "vnd", "clp", "isk"})
_CURRENCY_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£"}


def format_amount(minor_units: int, currency: str) -> str:
    """1290, 'eur' -> '€12.90'; currencies without a symbol here -> '12.90 CHF'."""
    currency = currency.lower()
    if currency in _ZERO_DECIMAL_CURRENCIES:
        number = f"{minor_units:,}"
    else:
        number = f"{minor_units // 100:,}.{minor_units % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def minor_units(decimal_text: str, currency: str) -> int | None:
    """'12.9', 'eur' -> 1290: a price in major units (as WhatsApp carts show it) in minor
    units, exactly (no float arithmetic); None when it is not a whole number of them."""
    try:
        amount = Decimal(decimal_text)
    except InvalidOperation:
        return None
    scale = 1 if currency.lower() in _ZERO_DECIMAL_CURRENCIES else 100
    minor = amount * scale
    if not minor.is_finite() or minor != minor.to_integral_value():
        return None
    return int(minor)
