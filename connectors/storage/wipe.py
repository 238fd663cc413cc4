"""After data is rewritten or deleted on SQLite, the old bytes must not linger on disk.

`PRAGMA secure_delete` (set on every connection, connectors/storage/database.py) zeroes
freed space in the database file; the write-ahead log still holds old page images until a
checkpoint, so re-encryption, erasure and purges end with one that truncates it.
PostgreSQL keeps old row versions until VACUUM (and in backups and WAL archives): see the
README's privacy section.
"""

from __future__ import annotations

from typing import Any


def scrub(engine: Any) -> None:
    """Checkpoints and truncates SQLite's write-ahead log; nothing to do elsewhere."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
