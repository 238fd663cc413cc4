"""The database both the tracker store and the connector's tables live in: DATABASE_URL.

A SQLite file by default, PostgreSQL when running several replicas. Plain SQLAlchemy: the
command-line tools and the connector's tables use it without loading Rasa.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool

from shop_contract.env_settings import ConfigError


class DatabaseConfigError(ConfigError):
    """DATABASE_URL is malformed; the message says what a valid one looks like."""


def default_database_url() -> str:
    """The SQLite file var/tracker.db in the bot's directory: the working directory of
    `rasa run`, where Rasa also reads credentials.yml and endpoints.yml (`make run` starts
    from this project's root). Not this package's folder: another bot that imports the
    connector keeps its conversations in its own directory."""
    return f"sqlite:///{Path.cwd() / 'var' / 'tracker.db'}"


def database_url(environ: Mapping[str, str]) -> str:
    """DATABASE_URL from the environment (default: the SQLite file), checked for shape."""
    raw = environ.get("DATABASE_URL", "").strip() or default_database_url()
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise DatabaseConfigError(
            "DATABASE_URL: not a database URL; expected e.g. sqlite:///var/tracker.db or "
            "postgresql://user:password@host:5432/shop"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return raw


def is_sqlite(url: str) -> bool:
    return str(make_url(url).get_backend_name()) == "sqlite"


def create_engine(url: str) -> Engine:
    """The engine for `url`: `sqlite_engine` for a SQLite file, else a pool that checks a
    connection before handing it out (a database restart does not fail the next request)."""
    if is_sqlite(url):
        return sqlite_engine(url)
    return sa.create_engine(url, future=True, pool_pre_ping=True)


def sqlite_engine(url: str) -> Engine:
    """An engine for a SQLite file that keeps its connections and commits cheaply.

    SQLAlchemy 1.4 opens a new connection per session for SQLite files; a small pool of
    long-lived ones (usable from the worker threads our store calls run in) avoids that.
    WAL with synchronous=NORMAL makes a commit cost no fsync of its own: a committed
    transaction survives a crash of the process (kill -9); only an operating-system crash
    can lose the last commits. Several replicas use PostgreSQL, where none of this applies.
    """
    engine = sa.create_engine(
        url, future=True, poolclass=QueuePool, connect_args={"check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Overwrite deleted and replaced content, so re-encryption and erasure leave no old
    # bytes in free pages (the write-ahead log is truncated after them, see storage.wipe).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
