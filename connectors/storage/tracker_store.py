"""Rasa's SQL tracker store, configured by DATABASE_URL instead of separate fields.

endpoints.yml names this class (`type: connectors.storage.tracker_store.DatabaseTrackerStore`), so
one variable configures the tracker store and the connector's own tables: a SQLite file by
default, PostgreSQL when running several replicas.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy.orm
from rasa.core.tracker_store import SQLTrackerStore

from connectors.storage.database import database_url, is_sqlite, sqlite_engine


class DatabaseTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose connection comes from DATABASE_URL."""

    engine: Any
    sessionmaker: Any

    def __init__(self, domain: Any = None, event_broker: Any = None, **_: Any) -> None:
        # A complete URL passed as `host` is used as is by SQLTrackerStore.get_db_url.
        url = database_url(os.environ)
        super().__init__(domain=domain, host=url, event_broker=event_broker)
        if is_sqlite(url):
            self.engine.dispose()
            self.engine = sqlite_engine(url)
            self.sessionmaker = sqlalchemy.orm.session.sessionmaker(bind=self.engine)
