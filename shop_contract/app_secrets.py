"""The WhatsApp app secrets setting, read the same way by both processes."""

from __future__ import annotations


def split_secrets(raw: str) -> tuple[str, ...]:
    """'old,new' -> ('old', 'new'); blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())
