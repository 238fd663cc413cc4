"""The checks every field of data/shop.yml goes through, and the one error they raise.

Shared by the shop file's sections (shop_contract/shop.py, shop_contract/delivery.py), so a
typo anywhere in the file is reported the same way, naming the field.
"""

from __future__ import annotations

from typing import Any


class ShopError(ValueError):
    """data/shop.yml is missing, unreadable or holds an invalid fact."""


def name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def fields(
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


def text(raw: dict[str, Any], field: str, where: str) -> str:
    value = raw[field]
    if not isinstance(value, str) or not value.strip():
        raise ShopError(f"{where}.{field}: must be non-empty text, got {value!r}")
    return value.strip()


def count(raw: dict[str, Any], field: str, where: str, minimum: int = 0) -> int:
    value = raw[field]
    # bool is an int subclass: reject True where a number is expected.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ShopError(f"{where}.{field}: must be a whole number ≥ {minimum}, got {value!r}")
    return value


def texts(raw: dict[str, Any], field: str, where: str, allow_empty: bool = True) -> tuple[str, ...]:
    value = raw[field]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ShopError(f"{where}.{field}: must be a list of non-empty texts, got {value!r}")
    if not value and not allow_empty:
        raise ShopError(f"{where}.{field}: must name at least one")
    return tuple(v.strip() for v in value)
