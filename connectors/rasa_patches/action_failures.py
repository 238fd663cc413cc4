"""Noticing that a custom action failed during a turn the connector started.

Rasa catches every exception of a custom action (action server down, timed out, 5xx),
logs it and goes on with the turn as if the action had returned nothing. For a payment
confirmation that would lose the message: the Stripe event would count as handled. The
patch in `connectors/rasa_patches/failure_recording.py` reports such failures here, for the
running turn, so the connector can leave the event unfinished and replay it once the action
server is back.
"""

from __future__ import annotations

from contextvars import ContextVar

_failures: ContextVar[list[str] | None] = ContextVar("action_failures", default=None)


class ActionFailed(RuntimeError):
    """A custom action failed during the turn; the work must be retried later."""


def record_failure(description: str) -> None:
    """Notes a failed custom action for the turn being watched (if any)."""
    failures = _failures.get()
    if failures is not None:
        failures.append(description)


class watch_actions:
    """`async with watch_actions(): …` raises ActionFailed if a custom action failed."""

    async def __aenter__(self) -> None:
        self._token = _failures.set([])

    async def __aexit__(self, *exc: object) -> None:
        failures = _failures.get() or []
        _failures.reset(self._token)
        if failures and exc[0] is None:
            raise ActionFailed(", ".join(failures))
