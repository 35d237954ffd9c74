"""A realistic metastore: databases, external and managed tables, views, dt/hr partitions,
params, column statistics, notifications and consistent sequences — and the S3 objects that
back every table and partition location.

Rows are generated in Python and loaded with COPY, so the large size (100k+ partitions) seeds
in seconds.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from drtests.config import SeedSettings
from drtests.metastore.schema import SEQUENCE_CLASSES, SEQUENCE_PREFIX
from drtests.objectstore import split_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
DATABASE_NAMES = ("production_critical", "analytics", "staging", "finance", "marketing")
TABLE_NAMES = (
    "fact_table",
    "events",
    "sessions",
    "orders",
    "clicks",
    "payments",
    "inventory",
    "shipments",
    "returns",
    "reviews",
    "dim_customer",
    "dim_product",
)
COLUMNS = (
    ("id", "bigint"),
    ("customer_id", "bigint"),
    ("amount", "decimal(18,2)"),
    ("status", "string"),
    ("payload", "string"),
)


@dataclass
class SeededTable:
    database: str
    name: str
    table_type: str
    location: str | None
    partition_keys: tuple[str, ...]
    partitions: list[str] = field(default_factory=list)

    @property
    def partition_locations(self) -> list[str]:
        assert self.location is not None
        return [f"{self.location}/{p}" for p in self.partitions]


@dataclass
class SeededMetastore:
    """What was seeded, for S3 objects, faults and assertions."""

    warehouse: str
    tables: list[SeededTable]

    def table(self, database: str, name: str) -> SeededTable:
        return next(t for t in self.tables if t.database == database and t.name == name)

    @property
    def partition_count(self) -> int:
        return sum(len(t.partitions) for t in self.tables)


class _Ids:
    def __init__(self) -> None:
        self._next: dict[str, int] = defaultdict(lambda: 1)

    def __call__(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value


def _stats(low: int, high: int, analyzed: int) -> tuple[Any, ...]:
    """The statistics columns shared by TAB_COL_STATS and PART_COL_STATS, from LONG_LOW_VALUE
    to LAST_ANALYZED: a bigint column with no NULLs and 1000 distinct values."""
    return (low, high, None, None, None, None, 0, 1000, None, None, None, None, None, analyzed)


def partition_values(count: int, two_level: bool) -> list[tuple[str, ...]]:
    start = date(2026, 2, 1)
    if not two_level:
        return [((start + timedelta(days=i)).isoformat(),) for i in range(count)]
    return [((start + timedelta(days=i // 24)).isoformat(), f"{i % 24:02d}") for i in range(count)]


def seed_metastore(
    conn: psycopg.Connection[Any], settings: SeedSettings, data_bucket: str = "spark-data"
) -> SeededMetastore:
    """Fill an empty HMS 3.1 schema; returns what it created."""
    now = int(time.time())
    warehouse = f"s3a://{data_bucket}/warehouse"
    ids = _Ids()
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    seeded: list[SeededTable] = []
    events: list[tuple[str, str, str | None, dict[str, Any]]] = []

    rows["CTLGS"].append((1, "hive", "Default catalog for Hive", warehouse))
    rows["ROLES"] += [(1, now, "admin", "admin"), (2, now, "public", "public")]
    rows["GLOBAL_PRIVS"].append((1, now, 1, "admin", "ROLE", "admin", "ROLE", "All", "SQL"))
    ids("MRole")
    ids("MRole")
    ids("MGlobalPrivilege")

    def storage(location: str | None, cd_id: int) -> int:
        serde_id = ids("MSerDeInfo")
        rows["SERDES"].append((serde_id, None, PARQUET_SERDE, None, None, None, 0))
        rows["SERDE_PARAMS"].append((serde_id, "serialization.format", "1"))
        sd_id = ids("MStorageDescriptor")
        rows["SDS"].append(
            (sd_id, PARQUET_IN, False, location, -1, PARQUET_OUT, serde_id, cd_id, False)
        )
        return sd_id

    names = [*DATABASE_NAMES, *(f"db_{i:03d}" for i in range(len(DATABASE_NAMES), 1000))]
    default_db = ids("MDatabase")
    rows["DBS"].append(
        (default_db, "Default Hive database", warehouse, "default", "public", "ROLE", "hive")
    )
    for db_name in names[: settings.databases]:
        db_id = ids("MDatabase")
        db_location = f"{warehouse}/{db_name}.db"
        rows["DBS"].append(
            (db_id, f"{db_name} data", db_location, db_name, "spark", "USER", "hive")
        )
        rows["DATABASE_PARAMS"] += [
            (db_id, "owner_team", "data-platform"),
            (db_id, "retention_days", "365"),
        ]
        events.append(("CREATE_DATABASE", db_name, None, {"location": db_location}))
        table_names = [*TABLE_NAMES, *(f"table_{i:03d}" for i in range(len(TABLE_NAMES), 999))]
        for index in range(settings.tables_per_database):
            is_view = index == settings.tables_per_database - 1
            unpartitioned = index == settings.tables_per_database - 2
            name = f"v_{table_names[0]}_daily" if is_view else table_names[index]
            table_type = (
                "VIRTUAL_VIEW"
                if is_view
                else "EXTERNAL_TABLE"
                if index % 2 == 0
                else "MANAGED_TABLE"
            )
            location = None if is_view else f"{db_location}/{name}"
            keys: tuple[str, ...] = (
                () if (is_view or unpartitioned) else (("dt", "hr") if index % 2 == 0 else ("dt",))
            )
            cd_id = ids("MColumnDescriptor")
            rows["CDS"].append((cd_id,))
            for position, (column, type_name) in enumerate(COLUMNS):
                rows["COLUMNS_V2"].append((cd_id, None, column, type_name, position))
            sd_id = storage(location, cd_id)
            tbl_id = ids("MTable")
            view_sql = (
                f"SELECT dt, count(*) FROM {db_name}.{table_names[0]} GROUP BY dt"
                if is_view
                else None
            )
            rows["TBLS"].append(
                (
                    tbl_id,
                    now,
                    db_id,
                    0,
                    "spark",
                    "USER",
                    0,
                    sd_id,
                    name,
                    table_type,
                    view_sql,
                    view_sql,
                    False,
                )
            )
            params = {"transient_lastDdlTime": str(now), "numFiles": "1", "totalSize": "1024"}
            if table_type == "EXTERNAL_TABLE":
                params["EXTERNAL"] = "TRUE"
            rows["TABLE_PARAMS"] += [(tbl_id, k, v) for k, v in params.items()]
            for position, key in enumerate(keys):
                rows["PARTITION_KEYS"].append((tbl_id, None, key, "string", position))
            if not is_view:
                for column, type_name in COLUMNS[:2]:
                    rows["TAB_COL_STATS"].append(
                        (
                            ids("MTableColumnStatistics"),
                            "hive",
                            db_name,
                            name,
                            column,
                            type_name,
                            tbl_id,
                            *_stats(1, 1_000_000, now),
                        )
                    )
            events.append(("CREATE_TABLE", db_name, name, {"tableType": table_type}))
            table = SeededTable(db_name, name, table_type, location, keys)
            seeded.append(table)
            if not keys:
                continue
            assert location is not None
            for values in partition_values(settings.partitions_per_table, len(keys) == 2):
                part_name = "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
                part_sd = storage(f"{location}/{part_name}", cd_id)
                part_id = ids("MPartition")
                rows["PARTITIONS"].append((part_id, now, 0, part_name, part_sd, tbl_id))
                for position, value in enumerate(values):
                    rows["PARTITION_KEY_VALS"].append((part_id, value, position))
                rows["PARTITION_PARAMS"] += [
                    (part_id, "transient_lastDdlTime", str(now)),
                    (part_id, "numFiles", "1"),
                    (part_id, "totalSize", "1024"),
                ]
                rows["PART_COL_STATS"].append(
                    (
                        ids("MPartitionColumnStatistics"),
                        "hive",
                        db_name,
                        name,
                        part_name,
                        "id",
                        "bigint",
                        part_id,
                        *_stats(1, 1000, now),
                    )
                )
                table.partitions.append(part_name)
            events.append(("ADD_PARTITION", db_name, name, {"partitions": len(table.partitions)}))

    rows["FUNCS"].append(
        (
            ids("MFunction"),
            "com.example.hive.udf.MaskPii",
            now,
            default_db + 1,
            "mask_pii",
            1,
            "spark",
            "USER",
        )
    )
    for event_id, (kind, db_name, tbl_name, message) in enumerate(events, start=1):
        rows["NOTIFICATION_LOG"].append(
            (
                event_id,
                event_id,
                now,
                kind,
                "hive",
                db_name,
                tbl_name,
                json.dumps(message),
                "json-0.2",
            )
        )

    with conn.transaction():
        for table_name, table_rows in rows.items():
            _copy_rows(conn, table_name, table_rows)
        for model, (table_name, column) in SEQUENCE_CLASSES.items():
            next_val = _max_id(conn, table_name, column) + 1
            conn.execute(
                'INSERT INTO "SEQUENCE_TABLE" ("SEQUENCE_NAME", "NEXT_VAL") VALUES (%s, %s)',
                (SEQUENCE_PREFIX + model, next_val),
            )
        conn.execute('UPDATE "NOTIFICATION_SEQUENCE" SET "NEXT_EVENT_ID" = %s', (len(events) + 1,))
    conn.execute("ANALYZE")
    return SeededMetastore(warehouse, seeded)


def _copy_rows(conn: psycopg.Connection[Any], table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        query = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
        with cur.copy(query) as copy:
            for row in rows:
                copy.write_row(row)


def _max_id(conn: psycopg.Connection[Any], table: str, column: str) -> int:
    query = sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
        sql.Identifier(column), sql.Identifier(table)
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def data_objects(metastore: SeededMetastore) -> list[str]:
    """The S3 URIs of the data files behind every table and partition."""
    uris: list[str] = []
    for table in metastore.tables:
        if table.location is None:
            continue
        if table.partitions:
            uris.append(f"{table.location}/_SUCCESS")
            uris += [f"{loc}/part-00000.snappy.parquet" for loc in table.partition_locations]
        else:
            uris.append(f"{table.location}/part-00000.snappy.parquet")
    return uris


def write_data_objects(
    client: S3Client,
    metastore: SeededMetastore,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Upload one small file per table/partition, with SHA-256 additional checksums."""
    uris = data_objects(metastore)

    def put(uri: str) -> None:
        bucket, key = split_uri(uri)
        body = b"PAR1" + key.encode() + b"PAR1"
        client.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")

    with ThreadPoolExecutor(max_workers=8) as pool:
        for done, _ in enumerate(pool.map(put, uris), start=1):
            if progress is not None:
                progress(done, len(uris))
    return len(uris)
