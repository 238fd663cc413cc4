"""Refusals at start-up: the server does not run where the channel would be unsafe.

Rasa only warns, or says nothing, when it runs next to an open REST channel or HTTP API, or
without the encrypted tracker store; the channel stops it instead (the messages say why).
"""

from __future__ import annotations

from typing import Any

from rasa.shared.utils.cli import print_error_and_exit

from connectors.edge.limits import cap_request_size, refuse_open_api
from connectors.rest_channel import refuse_open_rest_channels
from connectors.storage.encrypted_tracker import EncryptedTrackerStore


def check_server(app: Any, max_body_bytes: int) -> None:
    """Refuses to serve next to an open REST channel or HTTP API; caps body sizes."""
    refuse_open_rest_channels(getattr(app.ctx, "input_channels", ()))
    refuse_open_api(app)
    cap_request_size(app, max_body_bytes)


def refuse_unencrypted_tracker_store(agent: Any) -> None:
    """Stops the server when conversations would not be encrypted at rest.

    Rasa replaces a tracker store it cannot import with an in-memory one and only warns;
    a shop would then lose every conversation at the next restart, unnoticed.
    """
    store = agent.tracker_store if agent is not None else None
    while store is not None and not isinstance(store, EncryptedTrackerStore):
        store = getattr(store, "_tracker_store", None)  # Rasa's wrappers keep the real one here
    if store is None:
        print_error_and_exit(
            "tracker store: conversations would not be encrypted at rest — endpoints.yml must "
            f"name `type: {EncryptedTrackerStore.__module__}.{EncryptedTrackerStore.__name__}` "
            "and it must import (see the warning above for why it did not)"
        )
