"""Opening the connector's store at start-up: engine, schema migrations, start-up checks."""

from __future__ import annotations

from connectors.storage.checks import check_tables_readable
from connectors.storage.database import create_engine
from connectors.storage.keys import KeyRing
from connectors.storage.migrations import migrate
from connectors.storage.store import ConnectorStore


def open_store(url: str, keys: KeyRing | None = None, verify: bool = True) -> ConnectorStore:
    """The store on `url`, its schema migrated. `keys` defaults to TRACKER_ENCRYPTION_KEY;
    start-up stops (KeyConfigError, StoredDataError) when it is missing or does not open
    what is stored — unless `verify` is False, which only re-encryption uses."""
    ring = keys or KeyRing.from_env()
    engine = create_engine(url)
    migrate(engine)
    if verify:
        check_tables_readable(engine, ring)
    return ConnectorStore(engine, ring)
