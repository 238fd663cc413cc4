"""Event classes resolved from a table instead of a scan per event.

`Event.resolve_by_type` scans every Event subclass for every event of every tracker it
loads. A table built from the same scan answers in one lookup; names it does not know still
go through the original scan, so late-defined event classes keep working. Found with py-spy
on `rasa run` under Flow traffic (README, "Performance").
"""

from __future__ import annotations

from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

_original_resolve_by_type = Event.resolve_by_type
_event_types: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    if not _event_types:
        for cls in all_subclasses(Event):
            _event_types.setdefault(cls.type_name, cls)
    found = _event_types.get(type_name)
    if found is not None:
        return found
    resolved: type[Event] | None = _original_resolve_by_type(type_name, default)
    return resolved


def apply() -> None:
    """Replaces `Event.resolve_by_type` (idempotent)."""
    Event.resolve_by_type = staticmethod(_resolve_by_type)
