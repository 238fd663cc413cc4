"""Stripe's `expand` request parameter: the ids of related objects replaced in the answer by
the objects themselves, path by path (`payment_intent.latest_charge`).

As on Stripe, only fields that are expandable on the object at that point of the path can
be named (anything else is a 400 naming the path), at most four levels deep, and a field
that is null stays null.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sandbox.stripe_api.errors import StripeApiError

MAX_DEPTH = 4

# For each kind of object, its expandable fields and the kind of object each one names.
EXPANDABLE: dict[str, dict[str, str]] = {
    "checkout.session": {
        "customer": "customer",
        "invoice": "invoice",
        "payment_intent": "payment_intent",
        "subscription": "subscription",
    },
    "payment_intent": {"customer": "customer", "latest_charge": "charge"},
    "charge": {"customer": "customer", "payment_intent": "payment_intent"},
    "invoice": {"customer": "customer"},
    "subscription": {"customer": "customer"},
    "billing_portal.session": {},
    "customer": {},
}

Fetch = Callable[[str, str], dict[str, Any]]  # (kind, id) -> the object


def expand_paths(params: dict[str, Any]) -> list[str]:
    """The `expand[]` parameter's paths (a list, as the form encoding decodes it)."""
    paths = params.get("expand", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise StripeApiError(400, "Invalid array", param="expand")
    return paths


def expanded(obj: dict[str, Any], paths: list[str], fetch: Fetch) -> dict[str, Any]:
    """A copy of `obj` with each of `paths` expanded; StripeApiError as Stripe answers a
    path it cannot expand."""
    result = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise StripeApiError(
                400,
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        _expand(result, parts, path, fetch)
    return result


def _expand(obj: dict[str, Any], parts: list[str], path: str, fetch: Fetch) -> None:
    field, rest = parts[0], parts[1:]
    kind = EXPANDABLE.get(str(obj.get("object")), {}).get(field)
    if kind is None:
        raise StripeApiError(400, f"This property cannot be expanded ({path}).", param="expand")
    value = obj.get(field)
    if value is None:
        return
    if isinstance(value, str):
        value = obj[field] = fetch(kind, value)
    if rest:
        _expand(value, rest, path, fetch)
