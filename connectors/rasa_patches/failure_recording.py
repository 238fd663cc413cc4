"""Custom-action failures reported to `rasa_patches.action_failures` before Rasa swallows them.

Rasa catches every exception of `RemoteAction.run` and carries on with the turn; wrapping
it lets `watch_actions` see the failure (the exception still propagates to Rasa unchanged).
"""

from __future__ import annotations

from typing import Any

from rasa.core.actions.action import RemoteAction

from connectors.rasa_patches.action_failures import record_failure

_original_run = RemoteAction.run


async def _run(self: RemoteAction, *args: Any, **kwargs: Any) -> Any:
    try:
        return await _original_run(self, *args, **kwargs)
    except Exception as error:
        record_failure(f"{self.name()}: {type(error).__name__}")
        raise


def apply() -> None:
    """Replaces `RemoteAction.run` (idempotent)."""
    RemoteAction.run = _run
