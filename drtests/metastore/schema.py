"""The HMS schema the suite creates locally, and what it knows of the real one."""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg

from drtests.schema_fingerprint import schema_fingerprint

SCHEMA_FILE = "hive-schema-3.1.0.postgres.sql"
#: per schema version, each column of Hive's own DDL as ``TABLE.COLUMN → type NULL|NOT NULL``
#: (written from the DDL by ``python -m drtests.metastore.schema DSN``, checked by the tests)
REFERENCE_FILE = "schema-columns.json"

# schematool -validate's sequence check: model class → (table, id column).
SEQUENCE_CLASSES: dict[str, tuple[str, str]] = {
    "MDatabase": ("DBS", "DB_ID"),
    "MRole": ("ROLES", "ROLE_ID"),
    "MGlobalPrivilege": ("GLOBAL_PRIVS", "USER_GRANT_ID"),
    "MTable": ("TBLS", "TBL_ID"),
    "MStorageDescriptor": ("SDS", "SD_ID"),
    "MSerDeInfo": ("SERDES", "SERDE_ID"),
    "MColumnDescriptor": ("CDS", "CD_ID"),
    "MTablePrivilege": ("TBL_PRIVS", "TBL_GRANT_ID"),
    "MTableColumnStatistics": ("TAB_COL_STATS", "CS_ID"),
    "MPartition": ("PARTITIONS", "PART_ID"),
    "MPartitionColumnStatistics": ("PART_COL_STATS", "CS_ID"),
    "MFunction": ("FUNCS", "FUNC_ID"),
    "MIndex": ("IDXS", "INDEX_ID"),
    "MStringList": ("SKEWED_STRING_LIST", "STRING_LIST_ID"),
}
SEQUENCE_PREFIX = "org.apache.hadoop.hive.metastore.model."

# Tables whose absence means the metastore cannot serve (schematool's table check, trimmed
# to the ones both the 2.3 and 3.1 schemas have).
REQUIRED_TABLES = (
    "VERSION",
    "DBS",
    "DATABASE_PARAMS",
    "TBLS",
    "TABLE_PARAMS",
    "SDS",
    "CDS",
    "COLUMNS_V2",
    "SERDES",
    "SERDE_PARAMS",
    "PARTITIONS",
    "PARTITION_KEYS",
    "PARTITION_KEY_VALS",
    "PARTITION_PARAMS",
    "SEQUENCE_TABLE",
)

SUPPORTED_VERSIONS = ("2.3.0", "3.0.0", "3.1.0")


def create_schema(conn: psycopg.Connection[Any]) -> None:
    ddl = files("drtests.metastore").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    conn.execute(ddl.encode())


def schema_version(conn: psycopg.Connection[Any]) -> str | None:
    """The metastore's VERSION row (schematool's and HMS's own record of the schema)."""
    rows = conn.execute('SELECT "SCHEMA_VERSION" FROM "VERSION"').fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def column_facts(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """``TABLE.COLUMN → type NULL|NOT NULL`` of the public schema (defaults left out: the
    sequences behind them are named by whoever created the schema)."""
    columns = schema_fingerprint(conn, kinds=("column",)).facts
    return {subject: fact.split(" DEFAULT ", 1)[0] for (_kind, subject), fact in columns.items()}


def reference_columns(version: str) -> dict[str, str] | None:
    """Hive's own DDL of ``version`` as column facts; None for a version without one."""
    text = files("drtests.metastore").joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    found: dict[str, dict[str, str]] = json.loads(text)
    return found.get(version)


def _write_reference(dsn: str) -> None:
    """Create the packaged DDL in the empty database at ``dsn`` and record its columns."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_schema(conn)
        version = schema_version(conn)
        facts = column_facts(conn)
    assert version is not None
    target = Path(__file__).with_name(REFERENCE_FILE)
    target.write_text(json.dumps({version: facts}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    _write_reference(sys.argv[1])
