"""Reads a database the way an attacker with the disk would: raw bytes, every table."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def found_in_sqlite_files(database: Path, values: dict[str, str]) -> list[str]:
    """Which of `values` (what → text) appear in the SQLite file or its write-ahead log."""
    raw = b"".join(
        path.read_bytes()
        for path in (database, database.with_name(database.name + "-wal"))
        if path.exists()
    )
    return [what for what, text in values.items() if text.encode() in raw]


def found_in_tables(url: str, values: dict[str, str]) -> list[str]:
    """Which of `values` appear in any row of any table of the database at `url`."""
    engine = sa.create_engine(url, future=True)
    try:
        dump: list[str] = []
        with engine.connect() as connection:
            for table in sa.inspect(connection).get_table_names():
                query = sa.select(sa.text("*")).select_from(sa.table(table))
                rows = connection.execute(query).all()
                dump.extend(repr(tuple(row)) for row in rows)
        text = "\n".join(dump)
    finally:
        engine.dispose()
    return [what for what, value in values.items() if value in text]
