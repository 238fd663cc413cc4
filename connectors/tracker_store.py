"""Rasa's SQL tracker store, configured by DATABASE_URL instead of separate fields.

endpoints.yml names this class (`type: connectors.tracker_store.DatabaseTrackerStore`), so
one variable configures the tracker store and, later, our own tables: a SQLite file by
default, PostgreSQL when running several replicas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'tracker.db'}"


class DatabaseConfigError(ValueError):
    """DATABASE_URL is malformed; the message says what a valid one looks like."""


def database_url(environ: Mapping[str, str]) -> str:
    """DATABASE_URL from the environment (default: the SQLite file), checked for shape."""
    raw = environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseConfigError(
            "DATABASE_URL: not a database URL; expected e.g. sqlite:///var/tracker.db or "
            "postgresql://user:password@host:5432/shop"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return raw


class DatabaseTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose connection comes from DATABASE_URL."""

    def __init__(self, domain: Any = None, event_broker: Any = None, **_: Any) -> None:
        # A complete URL passed as `host` is used as is by SQLTrackerStore.get_db_url.
        super().__init__(domain=domain, host=database_url(os.environ), event_broker=event_broker)
