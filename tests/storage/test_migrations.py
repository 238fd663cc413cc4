"""Schema migrations: safe to run twice, and each upgrades a database of the release before
it in place, with its data still readable afterwards (SQLite files and PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.privacy.reencrypt import reencrypt
from connectors.storage.checks import StoredDataError
from connectors.storage.messages import OutboundRecord
from connectors.storage.migrations import MIGRATIONS, PSEUDONYM_COLUMNS, _migrate, migrate
from connectors.storage.opening import open_store
from connectors.storage.schema import inbound_messages, metadata, stripe_events
from connectors.storage.sealing import digest
from connectors.storage.store import ConnectorStore
from tests.storage.conftest import Backend
from tests.support.postgres import temporary_database

CUSTOMER = "15550301234"


def test_migrations_are_safe_to_run_twice(backend: Backend) -> None:
    store = backend.store()
    assert migrate(store.engine) == []  # the store's start-up applied everything
    again = backend.store()
    with again.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "select version from connector_schema_versions order by version"
        ).all()
    assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]


def schema_of(engine: sa.engine.Engine) -> dict[str, dict[str, object]]:
    """Every table's columns (in order, with type, nullability and default), primary key,
    indexes, unique constraints and foreign keys, as the database reports them."""
    inspector = sa.inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (str(u["name"]), tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
            "checks": sorted(str(c["sqltext"]) for c in inspector.get_check_constraints(table)),
        }
        for table in sorted(inspector.get_table_names())
    }


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_new_database_made_in_one_step_is_the_one_the_steps_make(
    dialect: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if dialect == "postgresql":
            urls = [stack.enter_context(temporary_database("steps")) for _ in range(2)]
        else:
            urls = [f"sqlite:///{tmp_path / name}.db" for name in ("one", "steps")]
        at_once, stepwise = (sa.create_engine(url, future=True) for url in urls)
        stack.callback(at_once.dispose)
        stack.callback(stepwise.dispose)
        every_version = [version for version, _, _ in MIGRATIONS]
        assert _migrate(at_once) == every_version
        assert _migrate(stepwise, new_in_one_step=False) == every_version
        assert schema_of(at_once) == schema_of(stepwise)
        assert "paid_orders" in schema_of(at_once)  # the latest step's table is there
        recorded = {}
        for name, engine in (("at once", at_once), ("stepwise", stepwise)):
            with engine.connect() as connection:
                rows = connection.exec_driver_sql(
                    "select version, description, applied_at from connector_schema_versions "
                    "order by version"
                ).all()
                assert [tuple(r[:2]) for r in rows] == [(v, d) for v, d, _ in MIGRATIONS]
                recorded[name] = {r[2] for r in rows}
                for table in metadata.tables:  # no step left data behind in either
                    count = connection.execute(
                        sa.select(sa.func.count()).select_from(metadata.tables[table])
                    ).scalar_one()
                    assert count == 0, table
        assert len(recorded["at once"]) == 1  # every version recorded in the one step
        assert len(recorded["stepwise"]) == len(MIGRATIONS)


def test_an_old_table_further_on_the_search_path_is_upgraded_not_skipped() -> None:
    """PostgreSQL: our tables in a schema later on the search path are what create_all and
    the steps see, so the database is not new and the old table gets the steps."""
    with temporary_database("first") as first, temporary_database("later") as later:
        later_schema = sa.engine.make_url(later).query["application_name"]
        old = sa.create_engine(later, future=True)
        with old.begin() as connection:  # the first release's table
            connection.exec_driver_sql(
                "create table wa_inbound_messages (message_id varchar(255) primary key, "
                "customer_key varchar(255) not null, received_at float not null, "
                "processed_at float)"
            )
        old.dispose()
        url = sa.engine.make_url(first)
        schema = url.query["application_name"]
        both = url.update_query_dict({"options": f"-csearch_path={schema},{later_schema}"})
        engine = sa.create_engine(both, future=True)
        try:
            assert migrate(engine) == [version for version, _, _ in MIGRATIONS]
            columns = {
                c["name"]
                for c in sa.inspect(engine).get_columns("wa_inbound_messages", later_schema)
            }
        finally:
            engine.dispose()
    assert {"customer_pseudonym", "payload", "claim_token", "outcome"} <= columns
    assert "customer_key" not in columns


def columns_of(store: ConnectorStore, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(store.engine).get_columns(table)}


def indexes_of(store: ConnectorStore, table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(store.engine).get_indexes(table)}


def test_a_new_database_has_pseudonym_columns_only(backend: Backend) -> None:
    """Tables created in today's shape keep it: no step adds the old column name back."""
    store = backend.store()
    assert pseudonym_shape(store) == {
        table: f"ix_{table}_customer_pseudonym" if indexed else None
        for table, indexed in PSEUDONYM_COLUMNS.items()
    }


def pseudonym_shape(store: ConnectorStore) -> dict[str, str | None]:
    """Per table, the index on its pseudonym column (None when not indexed); fails while a
    column or an index still has the old name."""
    shape = {}
    for table in PSEUDONYM_COLUMNS:
        columns = columns_of(store, table)
        assert "customer_pseudonym" in columns and "customer_key" not in columns, table
        names = [name for name in indexes_of(store, table) if "customer" in name]
        assert len(names) <= 1, names
        shape[table] = names[0] if names else None
    return shape


def to_customer_key_shape(store: ConnectorStore) -> None:
    """Back to the schema of version 9: the pseudonym columns named `customer_key`, indexed
    under that name; stripe_events without the index, as step 4 added its column."""
    with store.engine.begin() as connection:
        for table, indexed in PSEUDONYM_COLUMNS.items():
            if indexed:
                connection.exec_driver_sql(f"DROP INDEX ix_{table}_customer_pseudonym")
            connection.exec_driver_sql(
                f"ALTER TABLE {table} RENAME COLUMN customer_pseudonym TO customer_key"
            )
            if indexed and table != "stripe_events":
                connection.exec_driver_sql(
                    f"CREATE INDEX ix_{table}_customer_key ON {table} (customer_key)"
                )
        connection.exec_driver_sql("DELETE FROM connector_schema_versions WHERE version = 10")
    store.engine.dispose()


def test_customer_key_columns_become_customer_pseudonym_with_their_data(
    backend: Backend,
) -> None:
    store = backend.store()
    payload = json.dumps({"text": "hello"})
    store.messages.record_inbound("wamid.IN", CUSTOMER, time.time() - 60, payload, "claim")
    store.messages.touch_customer(CUSTOMER, 1_000.0)
    store.messages.record_outbound("wamid.OUT", CUSTOMER, "notification", "Order paid")
    store.stripe.record_event("evt_1", "checkout.session.completed", "{}", CUSTOMER)
    store.outbox.enqueue("evt_1:0", CUSTOMER, '{"type": "text"}')
    to_customer_key_shape(store)
    for table in PSEUDONYM_COLUMNS:  # the old shape, really
        assert "customer_key" in columns_of(store, table)

    upgraded = backend.store()  # migrates, then checks that every row opens

    renamed = pseudonym_shape(upgraded)
    assert renamed == pseudonym_shape(backend.store())  # as a new database has it
    assert upgraded.messages.record_inbound("wamid.IN", CUSTOMER) is False  # still counted
    assert upgraded.messages.last_inbound_at(CUSTOMER) == 1_000.0
    assert upgraded.messages.outbound("wamid.OUT") == OutboundRecord(
        "wamid.OUT", CUSTOMER, "notification", "Order paid", "accepted"
    )
    (entry,) = upgraded.outbox.entries()
    assert (entry.customer_id, entry.body, entry.unreadable) == (
        CUSTOMER,
        '{"type": "text"}',
        False,
    )
    (taken,) = upgraded.leases.claim_abandoned(inbound_messages, "message_id", 0)
    assert taken[:2] == (digest("wamid.IN"), payload)
    with upgraded.engine.connect() as connection:
        owned = sa.select(sa.func.count()).where(upgraded.sealer.owned_by(stripe_events, CUSTOMER))
        assert connection.execute(owned).scalar_one() == 1

    (rename,) = [step for version, _, step in MIGRATIONS if version == 10]
    with upgraded.engine.begin() as connection:  # the step again, as another replica might
        rename(connection)
    assert pseudonym_shape(upgraded) == renamed


def test_an_older_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as connection:  # the first release's table, with a message in it
        connection.exec_driver_sql(
            "create table wa_inbound_messages (message_id varchar(255) primary key, "
            "customer_key varchar(255) not null, received_at float not null, processed_at float)"
        )
        connection.exec_driver_sql(
            "insert into wa_inbound_messages values ('wamid.OLD', 'c', 1.0, 2.0)"
        )
    with pytest.raises(StoredDataError, match=r"1 row.*make privacy ARGS=reencrypt"):
        open_store(url)  # the schema is upgraded, but the clear-text row is refused
    assert reencrypt(open_store(url, verify=False))["wa_inbound_messages"] == 1
    store = open_store(url)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("wa_inbound_messages")}
    assert {"payload", "claimed_at", "claim_token", "customer_sealed"} <= columns
    assert {"customer_pseudonym"} <= columns and "customer_key" not in columns
    assert store.messages.record_inbound("wamid.OLD", "c") is False  # the old record still counts


def test_a_database_from_before_claim_tokens_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v5.db'}"
    store = open_store(url)
    store.outbox.enqueue("evt_old:0", "15550309999", '{"type": "text"}')
    tables = ("wa_inbound_messages", "stripe_events", "notification_outbox")
    with store.engine.begin() as connection:  # back to the schema of version 5
        for table in tables:
            connection.exec_driver_sql(f"alter table {table} drop column claim_token")
        connection.exec_driver_sql("delete from connector_schema_versions where version = 6")
    store.engine.dispose()

    upgraded = open_store(url)
    for table in tables:
        columns = {c["name"] for c in sa.inspect(upgraded.engine).get_columns(table)}
        assert "claim_token" in columns, table
    (entry,) = upgraded.outbox.claim_due(lease_seconds=60)  # the old row, claimed
    assert entry.claim is not None
    assert upgraded.outbox.mark_sent(entry.id, entry.claim, "wamid.X") is True


def test_a_database_from_before_order_and_flow_claimers_is_upgraded_in_place(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'v6.db'}"
    store = open_store(url)
    with store.engine.begin() as connection:  # back to the schema of version 6
        connection.exec_driver_sql("drop table stripe_order_payments")
        for column in ("claimer", "done_at"):
            connection.exec_driver_sql(f"alter table wa_flow_token_claims drop column {column}")
        connection.exec_driver_sql(
            "insert into wa_flow_token_claims (flow_token, claimed_at) values (?, 1.0)",
            (digest("ft-claimed-before"),),
        )
        connection.exec_driver_sql("delete from connector_schema_versions where version > 6")
    store.engine.dispose()

    upgraded = open_store(url)
    assert upgraded.flow_claims.claim("ft-claimed-before", "reply") == "done"  # as before
    assert upgraded.flow_claims.claim("ft-new", "reply") == "ours"
    assert upgraded.stripe.claim_order_payment("15550000001", "ORD-1", "cs_1") is True


def test_a_database_from_before_hand_overs_is_upgraded_in_place(backend: Backend) -> None:
    store = backend.store()
    store.outbox.enqueue("evt_v10:0", CUSTOMER, '{"type": "text"}')
    with store.engine.begin() as connection:  # back to the schema of version 10
        connection.exec_driver_sql("DROP TABLE handovers")
        connection.exec_driver_sql("DELETE FROM connector_schema_versions WHERE version = 11")
    store.engine.dispose()

    upgraded = backend.store()
    assert "ux_handovers_open_customer" in indexes_of(upgraded, "handovers")
    handover, fresh = upgraded.handovers.open(CUSTOMER, "asked")
    assert fresh and upgraded.handovers.open(CUSTOMER, "asked") == (handover, False)
    (entry,) = upgraded.outbox.entries()  # the rows from before are still there and open
    assert (entry.customer_id, entry.unreadable) == (CUSTOMER, False)


STARTER = """
import sys, time
from pathlib import Path
from connectors.storage.database import create_engine
from connectors.storage.migrations import migrate
engine = create_engine(sys.argv[1])
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.002)
migrate(engine)
"""


def test_processes_starting_at_once_on_a_new_sqlite_file_all_migrate_it(tmp_path: Path) -> None:
    """The bot's replicas (or the bot and `make migrate`) started together on a new file:
    each finds the schema made, none fails on a table another one created meanwhile."""
    url, go = f"sqlite:///{tmp_path / 'new.db'}", tmp_path / "go"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.5)  # each has imported SQLAlchemy and waits
    go.touch()
    outcomes = [(starter.wait(timeout=60), starter.stdout.read()) for starter in starters]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0], [out[-400:] for _, out in outcomes]
    engine = sa.create_engine(url, future=True)
    try:
        assert schema_of(engine).keys() >= set(metadata.tables)
        with engine.connect() as connection:
            recorded = connection.exec_driver_sql(
                "select version from connector_schema_versions order by version"
            ).all()
    finally:
        engine.dispose()
    assert [r[0] for r in recorded] == [version for version, _, _ in MIGRATIONS]
