"""A ConnectorStore is built without I/O; open_store makes the engine, migrates and checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.storage.checks import StoredDataError
from connectors.storage.database import create_engine
from connectors.storage.keys import ENV_VAR, KeyConfigError, KeyRing, new_key_line
from connectors.storage.migrations import MIGRATIONS
from connectors.storage.opening import open_store
from connectors.storage.schema import metadata
from connectors.storage.store import ConnectorStore

CUSTOMER = "15550401234"


def test_a_store_is_built_without_touching_its_database(tmp_path: Path) -> None:
    database = tmp_path / "untouched.db"
    store = ConnectorStore(create_engine(f"sqlite:///{database}"), KeyRing.from_env())
    assert not database.exists()  # SQLite creates the file on the first connection
    unreachable = ConnectorStore(
        sa.create_engine("sqlite:////nonexistent-dir/nowhere.db"), store.keys
    )  # built all the same
    with pytest.raises(sa.exc.OperationalError):  # the first call is the first I/O
        unreachable.messages.last_inbound_at(CUSTOMER)


def test_open_store_migrates_the_schema(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'opened.db'}")
    tables = set(sa.inspect(store.engine).get_table_names())
    assert set(metadata.tables) | {"connector_schema_versions"} <= tables
    with store.engine.connect() as connection:
        versions = connection.exec_driver_sql("select version from connector_schema_versions")
        assert sorted(row[0] for row in versions) == [step[0] for step in MIGRATIONS]


def test_open_store_checks_the_key_unless_told_not_to(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    open_store(url).messages.touch_customer(CUSTOMER, 1.0)
    impostor = KeyRing.parse(new_key_line("test"))  # another key under the same id
    with pytest.raises(StoredDataError, match="key 'test' does not open the table wa_customers"):
        open_store(url, impostor)
    unchecked = open_store(url, impostor, verify=False)  # what re-encryption opens
    assert unchecked.keys is impostor


def test_a_missing_key_stops_before_the_database_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR)
    database = tmp_path / "never.db"
    with pytest.raises(KeyConfigError, match="is not set"):
        open_store(f"sqlite:///{database}")
    assert not database.exists()
