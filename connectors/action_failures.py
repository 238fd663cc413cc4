"""Noticing that a custom action failed during a turn the connector started.

Rasa catches every exception of a custom action (action server down, timed out, 5xx),
logs it and goes on with the turn as if the action had returned nothing. For a payment
confirmation that would lose the message: the Stripe event would count as handled. This
module records such failures for the running turn, so the connector can leave the event
unfinished and replay it once the action server is back.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from rasa.core.actions.action import RemoteAction

_failures: ContextVar[list[str] | None] = ContextVar("action_failures", default=None)
_original_run = RemoteAction.run


class ActionFailed(RuntimeError):
    """A custom action failed during the turn; the work must be retried later."""


async def _run(self: RemoteAction, *args: Any, **kwargs: Any) -> Any:
    try:
        return await _original_run(self, *args, **kwargs)
    except Exception as error:
        failures = _failures.get()
        if failures is not None:
            failures.append(f"{self.name()}: {type(error).__name__}")
        raise


def apply() -> None:
    """Installs the recording (idempotent)."""
    RemoteAction.run = _run


class watch_actions:
    """`async with watch_actions(): …` raises ActionFailed if a custom action failed."""

    async def __aenter__(self) -> None:
        self._token = _failures.set([])

    async def __aexit__(self, *exc: object) -> None:
        failures = _failures.get() or []
        _failures.reset(self._token)
        if failures and exc[0] is None:
            raise ActionFailed(", ".join(failures))
