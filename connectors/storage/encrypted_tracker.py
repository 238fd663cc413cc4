"""EncryptedTrackerStore: Rasa's SQL tracker store with every event sealed at rest.

endpoints.yml names it (`type: connectors.storage.encrypted_tracker.EncryptedTrackerStore`).
It keeps Rasa's `events` table and its row-per-event appends (so several replicas share it
as before) and changes what a row holds (connectors/storage/tracker_events.py):

- `sender_id` is the customer's pseudonym (`KeyRing.pseudonym`), never the WhatsApp id;
- `data` is the event, sealed with AES-GCM together with the real conversation id (which
  re-encryption under a new key needs), authenticated against the row's pseudonym;
- `type_name`, `intent_name`, `action_name` and `timestamp` stay readable: they hold names
  from the domain and times, which Rasa's queries use.

Start-up stops with a clear error when the key is missing or short, when stored events are
not readable with it, or when some were written before encryption was enabled.
`keys()` returns pseudonyms, not conversation ids.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.storage.checks import check_events_readable
from connectors.storage.keys import KeyRing
from connectors.storage.tracker_events import open_event, seal_event
from connectors.storage.tracker_store import DatabaseTrackerStore


class EncryptedTrackerStore(DatabaseTrackerStore):
    """SQL tracker store (DATABASE_URL) whose rows hold pseudonyms and sealed events."""

    def __init__(self, domain: Any = None, event_broker: Any = None, **kwargs: Any) -> None:
        self.keys = KeyRing.from_env()  # before any connection: a missing key stops here
        super().__init__(domain=domain, event_broker=event_broker, **kwargs)
        check_events_readable(self.engine, self.keys)

    def _event_query(
        self, session: Any, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> Any:
        events = self.SQLEvent
        owned = events.sender_id.in_(self.keys.pseudonyms(sender_id))
        query = session.query(events).filter(owned)
        if not fetch_events_from_all_sessions:
            session_start = (
                session.query(sa.func.max(events.timestamp).label("session_start"))
                .filter(owned, events.type_name == SessionStarted.type_name)
                .subquery()
            )
            query = query.filter(
                sa.or_(
                    events.timestamp >= session_start.c.session_start,
                    session_start.c.session_start.is_(None),
                )
            )
        return query.order_by(events.id)

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions).all()
            events = [open_event(self.keys, row.sender_id, row.data)[1] for row in rows]
        if not self.domain or not events:
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                pseudonym, sealed = seal_event(self.keys, tracker.sender_id, data)
                session.add(
                    self.SQLEvent(
                        sender_id=pseudonym,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {}).get("intent", {}).get("name"),
                        action_name=data.get("name"),
                        data=sealed,
                    )
                )
            session.commit()
