"""Runs the connector's schema migrations: `python -m scripts.migrate` (or `make migrate`).
Every start of the connector runs them too; running them twice is safe."""

from __future__ import annotations

import os
import sys

import sqlalchemy as sa

from connectors.storage.migrations import migrate
from connectors.storage.tracker_store import database_url, is_sqlite, sqlite_engine


def main() -> int:
    url = database_url(os.environ)
    engine = sqlite_engine(url) if is_sqlite(url) else sa.create_engine(url, future=True)
    applied = migrate(engine)
    print(f"schema up to date (applied now: {applied or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
