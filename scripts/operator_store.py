"""The connector's store for operator commands (`make outbox`, `make privacy`).

Reads `.env` like `make run` does, and turns a configuration problem (no or wrong key, bad
DATABASE_URL, unreadable data) into one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

from connectors.storage.checks import StoredDataError
from connectors.storage.database import DatabaseConfigError, database_url
from connectors.storage.keys import KeyConfigError
from connectors.storage.opening import open_store as open_connector_store
from connectors.storage.store import ConnectorStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def open_store(command: str, verify: bool = True) -> ConnectorStore:
    load_dotenv(PROJECT_ROOT / ".env", override=False)
    try:
        return open_connector_store(database_url(os.environ), verify=verify)
    except (KeyConfigError, StoredDataError, DatabaseConfigError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
