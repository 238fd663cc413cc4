"""Runs the connector's schema migrations: `python -m scripts.migrate` (or `make migrate`).
Every start of the connector runs them too; running them twice is safe."""

from __future__ import annotations

import os
import sys

from connectors.storage.database import create_engine, database_url
from connectors.storage.migrations import migrate


def main() -> int:
    url = database_url(os.environ)
    applied = migrate(create_engine(url))
    print(f"schema up to date (applied now: {applied or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
