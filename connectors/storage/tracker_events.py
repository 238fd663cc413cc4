"""How a tracker event is stored by EncryptedTrackerStore: under the conversation's
pseudonym, sealed with the real conversation id, authenticated against that pseudonym.

Kept apart from the tracker store class so that the start-up checks and the privacy tools
read and write Rasa's `events` table without loading Rasa.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from connectors.storage.keys import KeyRing

# Rasa's `events` table (SQLTrackerStore.SQLEvent), for the privacy tools' own queries.
EVENTS = sa.table(
    "events",
    sa.column("id"),
    sa.column("sender_id"),
    sa.column("type_name"),
    sa.column("timestamp"),
    sa.column("data"),
)


def seal_event(keys: KeyRing, sender_id: str, event: dict[str, Any]) -> tuple[str, str]:
    """(pseudonym, sealed data) for one event of `sender_id`'s conversation."""
    pseudonym = keys.pseudonym(sender_id)
    plaintext = json.dumps({"sender_id": sender_id, "event": event}, separators=(",", ":"))
    return pseudonym, keys.seal(plaintext, pseudonym.encode())


def open_event(keys: KeyRing, pseudonym: str, data: str) -> tuple[str, dict[str, Any]]:
    """(conversation id, event) of a stored row."""
    content = json.loads(keys.open(data, pseudonym.encode()))
    return content["sender_id"], content["event"]
