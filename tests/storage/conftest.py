"""Stores on SQLite files and on PostgreSQL, for the repositories' tests.

The PostgreSQL runs use a throw-away database (tests/postgres.py) and skip only when the
server cannot be reached.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from tests.support.postgres import temporary_database


@dataclass
class Backend:
    """Stores on one database (a fresh SQLite file or PostgreSQL database per test)."""

    url: str
    stores: list[ConnectorStore] = field(default_factory=list)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def store(self) -> ConnectorStore:
        """A store opened anew on the same database (as after a restart)."""
        opened = open_store(self.url)
        self.stores.append(opened)
        return opened

    def message_id(self, name: str) -> str:
        return f"wamid.{self.tag}.{name}"

    def customer_id(self, name: str) -> str:
        return f"test-{self.tag}-{name}"

    def flow_token(self, name: str) -> str:
        return f"flow-{self.tag}-{name}"

    def close(self) -> None:
        for opened in self.stores:
            opened.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(temporary_database("storage"))
        else:
            url = f"sqlite:///{tmp_path}/x.db"
        found = Backend(url)
        yield found
        found.close()
