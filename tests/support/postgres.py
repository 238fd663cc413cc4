"""A throw-away PostgreSQL namespace per test (or module): created empty, dropped after.

It is a schema of the test database, which the returned URL puts first on the search path, so
the code under test creates and reads its tables there as it would in a database of its own.
A schema costs a few milliseconds; a CREATE DATABASE copies a template (~0.3 s per test).
PostgreSQL's advisory locks are per database: migrations of parallel tests wait for each other.

The server is TEST_POSTGRES_URL's (default: the local one, trust auth). Tests skip with the
reason only when it cannot be reached; CI here has it, so they run there.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def unreachable_reason() -> str | None:
    """Why PostgreSQL cannot be used here, or None when the server answers."""
    engine = sa.create_engine(POSTGRES_URL, future=True, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        shown = repr(sa.engine.make_url(POSTGRES_URL))  # the password, if any, masked
        return f"PostgreSQL at TEST_POSTGRES_URL={shown} is unreachable: {first_line}"
    finally:
        engine.dispose()
    return None


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """The URL of a new empty schema of the test database, dropped with its tables on exit."""
    reason = unreachable_reason()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}_{secrets.token_hex(4)}"
    server = sa.engine.make_url(POSTGRES_URL)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        # The application name marks this schema's connections, for ending them on exit.
        scoped = server.update_query_dict(
            {"options": f"-csearch_path={name}", "application_name": name}
        )
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # A connection left in a transaction would hold its locks: end them first.
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": name},
            )
            connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()
