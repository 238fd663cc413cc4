"""The connector's store for operator commands (`make outbox`, `make privacy`, `make chat`).

Reads its settings as the bot does (ENV_FILE or `.env`, then DATABASE_URL and
TRACKER_ENCRYPTION_KEY through connectors/settings.py), and turns a configuration problem
(no or wrong key, bad DATABASE_URL, unreadable data) into one line on stderr and exit
status 2, not a traceback.
"""

from __future__ import annotations

import os
import sys

from connectors.settings import DatabaseSettings, key_ring
from connectors.storage.opening import open_store as open_connector_store
from connectors.storage.store import ConnectorStore
from shop_contract.env_settings import ConfigError, load_env_file


def open_store(command: str, verify: bool = True) -> ConnectorStore:
    try:
        load_env_file()
        database = DatabaseSettings.from_env(os.environ)
        return open_connector_store(database.url, keys=key_ring(os.environ), verify=verify)
    except ConfigError as error:
        print(f"{command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
