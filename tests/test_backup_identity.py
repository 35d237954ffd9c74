"""What a staged backup must be before it may replace a component's database, against real
PostgreSQL databases: the seeded metastore passes; a shop's database, a metastore at another
schema version, an alembic database at another revision or without its tables do not, and
each refusal names what was found. Also the backup metadata check and the schema
fingerprint's findings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drtests.backups import BackupCatalog, BackupRecord
from drtests.errors import IncompatibleBackup
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.metastore.schema import column_facts, create_schema, reference_columns
from drtests.postgres import (
    PostgresEndpoint,
    connect,
    create_database,
    drop_database,
    dump_database,
    restore_into_new_database,
)
from drtests.procedures.identity import (
    MLFLOW_TABLES,
    alembic_identity,
    metastore_identity,
    mlflow_heads,
    running_metastore_versions,
)
from drtests.procedures.staging import _check_metadata
from drtests.schema_fingerprint import schema_differences, schema_fingerprint


@pytest.fixture
def scratch_db(metastore: MetastoreUnderTest) -> Iterator[tuple[PostgresEndpoint, str]]:
    endpoint = metastore.target.endpoint
    name = f"{metastore.target.database}__identity"
    drop_database(endpoint, name)
    create_database(endpoint, name)
    yield endpoint, name
    drop_database(endpoint, name)


def _run(endpoint: PostgresEndpoint, database: str, *statements: str) -> None:
    with connect(endpoint, database, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _identify(endpoint: PostgresEndpoint, database: str, identify: Any) -> str:
    with connect(endpoint, database) as conn:
        return str(identify(conn))


def test_the_seeded_metastore_is_identified(metastore: MetastoreUnderTest) -> None:
    target = metastore.target
    versions = running_metastore_versions(target.endpoint, target.database)
    assert versions == ("3.1.0",)
    said = _identify(target.endpoint, target.database, metastore_identity(versions))
    assert said.startswith("Hive metastore schema 3.1.0")


def test_a_shop_database_is_not_a_metastore(scratch_db: tuple[PostgresEndpoint, str]) -> None:
    endpoint, name = scratch_db
    _run(endpoint, name, "CREATE TABLE customers (id int PRIMARY KEY, name text)")
    with pytest.raises(IncompatibleBackup, match=r"not a Hive metastore.*holds customers"):
        _identify(endpoint, name, metastore_identity(("3.1.0",)))


def test_a_metastore_at_another_version_is_refused(metastore: MetastoreUnderTest) -> None:
    target = metastore.target
    with pytest.raises(IncompatibleBackup, match=r"schema 3.1.0; .* expects 2.3.0"):
        _identify(target.endpoint, target.database, metastore_identity(("2.3.0",)))


def test_a_metastore_with_two_version_rows_is_refused(metastore: MetastoreUnderTest) -> None:
    target = metastore.target
    with connect(target.endpoint, target.database) as conn:
        conn.execute(
            'INSERT INTO "VERSION" ("VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT") '
            "VALUES (99, '2.3.0', 'second')"
        )
        with pytest.raises(IncompatibleBackup, match="VERSION holds 2 rows"):
            metastore_identity(("3.1.0", "2.3.0"))(conn)
        conn.rollback()


def test_alembic_databases_by_tables_and_revision(scratch_db: tuple[PostgresEndpoint, str]) -> None:
    endpoint, name = scratch_db
    identify = alembic_identity("MLflow", MLFLOW_TABLES, ("head1",))
    with pytest.raises(IncompatibleBackup, match=r"not an MLflow database: 5 of its tables"):
        _identify(endpoint, name, identify)
    _run(
        endpoint,
        name,
        *(f"CREATE TABLE {t} (x int)" for t in MLFLOW_TABLES if t != "alembic_version"),
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('older')",
    )
    with pytest.raises(IncompatibleBackup, match=r"migration older; the installed MLflow expects"):
        _identify(endpoint, name, identify)
    _run(endpoint, name, "UPDATE alembic_version SET version_num = 'head1'")
    assert "at migration head1" in _identify(endpoint, name, identify)
    # the installed version unknown: the tables and one revision still decide
    assert _identify(endpoint, name, alembic_identity("MLflow", MLFLOW_TABLES, None))


def _record(database: str, component: str) -> BackupRecord:
    return BackupRecord(
        "b", "k.dump", database, datetime(2026, 1, 1, tzinfo=UTC), 1, "s", "m", component
    )


def test_backup_metadata_must_name_this_component_and_database(tmp_path: Path) -> None:
    catalog = BackupCatalog.__new__(BackupCatalog)
    catalog.name = "hive-metastore"
    assert "hive-metastore backup of metastore" in _check_metadata(
        catalog, _record("metastore", "hive-metastore"), "metastore"
    )
    with pytest.raises(IncompatibleBackup, match="a backup of database 'h23_shop'"):
        _check_metadata(catalog, _record("h23_shop", "hive-metastore"), "metastore")
    with pytest.raises(IncompatibleBackup, match="a backup of airflow, not of hive-metastore"):
        _check_metadata(catalog, _record("metastore", "airflow"), "metastore")
    # backups written before the component was recorded: the content decides
    assert _check_metadata(catalog, _record("", ""), "metastore")


def test_schema_fingerprint_names_each_difference(
    scratch_db: tuple[PostgresEndpoint, str],
) -> None:
    endpoint, name = scratch_db
    _run(
        endpoint,
        name,
        'CREATE TABLE "SDS" ("SD_ID" bigint PRIMARY KEY, "LOCATION" varchar(4000))',
        'CREATE INDEX "SDS_LOC" ON "SDS" ("LOCATION")',
        "CREATE SEQUENCE ids INCREMENT 1",
    )
    with connect(endpoint, name) as conn:
        before = schema_fingerprint(conn)
    _run(
        endpoint,
        name,
        'DROP INDEX "SDS_LOC"',
        'ALTER TABLE "SDS" ALTER COLUMN "LOCATION" TYPE text',
        'ALTER TABLE "SDS" ALTER COLUMN "LOCATION" SET NOT NULL',
        "ALTER SEQUENCE ids INCREMENT 5",
    )
    with connect(endpoint, name) as conn:
        after = schema_fingerprint(conn)
    found = {f.subject: f.detail for f in schema_differences(before, after)}
    assert set(found) == {"column SDS.LOCATION", "index SDS_LOC", "sequence ids"}
    assert found["column SDS.LOCATION"] == "text NOT NULL, baseline character varying(4000) NULL"
    assert found["index SDS_LOC"].startswith("missing")
    assert schema_differences(after, after) == []


def test_the_shipped_reference_is_the_packaged_ddl(
    scratch_db: tuple[PostgresEndpoint, str],
) -> None:
    """schema_matches_version judges against schema-columns.json; it must be what Hive's
    DDL creates (regenerate with ``python -m drtests.metastore.schema DSN``)."""
    endpoint, name = scratch_db
    with connect(endpoint, name, autocommit=True) as conn:
        create_schema(conn)
        assert column_facts(conn) == reference_columns("3.1.0")
    assert reference_columns("2.3.0") is None


def test_a_dump_and_restore_changes_no_schema_fact(
    scratch_db: tuple[PostgresEndpoint, str], tmp_path: Path
) -> None:
    """PostgreSQL deparses ``CHECK (x IN (...))`` one way at creation and another after a
    restore re-parsed it (as MLflow's schema shows): the same schema all the same. A real
    change inside such a constraint still counts."""
    endpoint, name = scratch_db
    _run(
        endpoint,
        name,
        "CREATE TABLE runs (status varchar(20) CHECK (status IN ('RUNNING', 'FAILED')), "
        "stage varchar(20) DEFAULT 'active')",
        "CREATE INDEX runs_running ON runs (status) WHERE status IN ('RUNNING')",
    )
    dump = tmp_path / "roundtrip.dump"
    dump_database(endpoint, name, dump)
    copy = f"{name}_copy"
    restore_into_new_database(endpoint, copy, dump)
    try:
        with connect(endpoint, name) as conn:
            original = schema_fingerprint(conn)
        with connect(endpoint, copy) as conn:
            restored = schema_fingerprint(conn)
        assert schema_differences(original, restored) == []
        _run(endpoint, copy, "ALTER TABLE runs DROP CONSTRAINT runs_status_check")
        _run(
            endpoint,
            copy,
            "ALTER TABLE runs ADD CONSTRAINT runs_status_check "
            "CHECK (status IN ('RUNNING', 'FAILED', 'KILLED'))",
        )
        with connect(endpoint, copy) as conn:
            changed = schema_differences(original, schema_fingerprint(conn))
        assert [f.subject for f in changed] == ["constraint runs.runs_status_check"]
    finally:
        drop_database(endpoint, copy)


def test_mlflow_backups_may_be_at_the_live_stores_migration_or_the_installed_one(
    scratch_db: tuple[PostgresEndpoint, str],
) -> None:
    """A live server may run another MLflow than the one beside the suite: the revision its
    backend store is at counts, as does the installed MLflow's newest."""
    pytest.importorskip("mlflow")
    from mlflow.store.db.utils import _get_latest_schema_revision

    endpoint, name = scratch_db
    installed = str(_get_latest_schema_revision())
    assert mlflow_heads(endpoint, name) == (installed,), "no alembic_version: installed only"
    _run(
        endpoint,
        name,
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('live-server-rev')",
    )
    assert mlflow_heads(endpoint, name) == ("live-server-rev", installed)


def test_triggers_rules_collations_and_functions_are_schema_facts(
    scratch_db: tuple[PostgresEndpoint, str],
) -> None:
    """A backup can bring every row back with a trigger that swallows each insert: the
    schema check must see it, and rules, collations and functions alike."""
    endpoint, name = scratch_db
    _run(endpoint, name, 'CREATE TABLE "PARTITIONS" ("PART_ID" bigint, "PART_NAME" varchar(767))')
    with connect(endpoint, name) as conn:
        before = schema_fingerprint(conn)
    _run(
        endpoint,
        name,
        "CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
        'CREATE TRIGGER zz BEFORE INSERT ON "PARTITIONS" FOR EACH ROW EXECUTE FUNCTION swallow()',
        'CREATE RULE keep AS ON DELETE TO "PARTITIONS" DO INSTEAD NOTHING',
        'ALTER TABLE "PARTITIONS" ALTER COLUMN "PART_NAME" TYPE varchar(767) COLLATE "C"',
    )
    with connect(endpoint, name) as conn:
        found = {f.subject: f.detail for f in schema_differences(before, schema_fingerprint(conn))}
    assert set(found) == {
        "function swallow()",
        "trigger PARTITIONS.zz",
        "rule PARTITIONS.keep",
        "column PARTITIONS.PART_NAME",
    }, found
    assert 'COLLATE "C"' in found["column PARTITIONS.PART_NAME"]


def test_an_empty_metastore_is_not_a_backup_of_one(metastore: MetastoreUnderTest) -> None:
    """Every table there, one VERSION row, but not even the 'default' database: HMS never
    leaves a metastore like that, a truncating job or a dump of a fresh schema does."""
    target = metastore.target
    with connect(target.endpoint, target.database) as conn:
        conn.execute('TRUNCATE "DBS" CASCADE')
        with pytest.raises(IncompatibleBackup, match="an empty metastore"):
            metastore_identity(("3.1.0",))(conn)
        conn.rollback()


def test_an_empty_mlflow_store_is_refused(scratch_db: tuple[PostgresEndpoint, str]) -> None:
    endpoint, name = scratch_db
    _run(
        endpoint,
        name,
        *(f"CREATE TABLE {t} (x int)" for t in MLFLOW_TABLES if t != "alembic_version"),
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('head1')",
    )
    identify = alembic_identity("MLflow", MLFLOW_TABLES, ("head1",), "experiments")
    with pytest.raises(IncompatibleBackup, match="empty MLflow database: experiments has no row"):
        _identify(endpoint, name, identify)
    _run(endpoint, name, "INSERT INTO experiments VALUES (0)")
    assert "at migration head1" in _identify(endpoint, name, identify)
