"""Runs the connector's schema migrations: `python -m scripts.migrate` (or `make migrate`).
Every start of the connector runs them too; running them twice is safe. Reads DATABASE_URL
as the bot does (ENV_FILE or `.env` included)."""

from __future__ import annotations

import os
import sys

from connectors.settings import DatabaseSettings
from connectors.storage.database import create_engine
from connectors.storage.migrations import migrate
from shop_contract.env_settings import ConfigError, load_env_file


def main() -> int:
    try:
        load_env_file()
        url = DatabaseSettings.from_env(os.environ).url
    except ConfigError as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 2
    applied = migrate(create_engine(url))
    print(f"schema up to date (applied now: {applied or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
