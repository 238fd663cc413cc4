"""What every shape check of the Graph API emulator shares: Meta's error codes for a bad
send, the error that carries one, and the small checks that raise it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INVALID_PARAMETER = 131009  # "(#131009) Parameter value is not valid"
REQUIRED_PARAMETER = 131008  # "(#131008) Required parameter is missing"


class InvalidMessage(ValueError):
    """A message Meta would refuse; `code` is Meta's error code."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _require(condition: bool, details: str, code: int = INVALID_PARAMETER) -> None:
    if not condition:
        raise InvalidMessage(code, details)


def _text(value: Any, where: str, limit: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    _require(isinstance(value, str) and value != "", f"{where} is required", REQUIRED_PARAMETER)
    assert isinstance(value, str)
    _require(len(value) <= limit, f"{where} is longer than {limit} characters")
    return value


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    _require(isinstance(value, dict), f"{where} is required", REQUIRED_PARAMETER)
    assert isinstance(value, dict)
    return value
