"""The Hive Metastore as its clients see it, over Thrift: SHOW DATABASES / SHOW TABLES /
SHOW PARTITIONS answered by the service, and the calls that create objects through it.

Reading every table and partition object (not only names) makes DataNucleus load each row the
suite or a restore wrote, so a row HMS cannot read fails here even when SQL checks pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hmsclient.genthrift.hive_metastore import ThriftHiveMetastore, ttypes
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TException
from thrift.transport import TSocket, TTransport

from drtests.errors import EnvironmentUnavailable
from drtests.metastore.partitions import make_part_name
from drtests.processes import growing
from drtests.results import CheckResult, Finding

# the socket logs every refused connect at ERROR; a readiness wait expects refusals and
# reports the one that matters itself
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)

PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@contextmanager
def hms_client(host: str, port: int, timeout: float = 30.0) -> Iterator[Any]:
    """A connected Thrift client; unreachable services become one clear error."""
    sock = TSocket.TSocket(host, port)
    sock.setTimeout(timeout * 1000)
    transport = TTransport.TBufferedTransport(sock)
    client = ThriftHiveMetastore.Client(TBinaryProtocol.TBinaryProtocol(transport))
    try:
        transport.open()
    except TException as exc:
        raise EnvironmentUnavailable(f"HMS Thrift {host}:{port} unreachable: {exc}") from None
    try:
        yield client
    finally:
        transport.close()


def show_databases(host: str, port: int, timeout: float = 30.0) -> list[str]:
    try:
        with hms_client(host, port, timeout) as client:
            return sorted(client.get_all_databases())
    except (TException, OSError) as exc:
        raise EnvironmentUnavailable(f"HMS Thrift {host}:{port}: {exc}") from None


def answering(host: str, port: int | Callable[[], int]) -> Callable[[], bool]:
    """The readiness probe of a metastore service: ready when a Thrift call (SHOW
    DATABASES) is answered, not merely when the port is open; patient with a service that
    answers slowly (2 s per try at first, doubling up to 30 s). ``port`` may be read at
    each try, for a service that can be moved to another port while it starts."""
    current = port if callable(port) else lambda: port

    def answers(timeout: float) -> bool:
        try:
            show_databases(host, current(), timeout)
        except EnvironmentUnavailable:
            return False
        return True

    return growing(answers, 2.0, 30.0)


@dataclass(frozen=True)
class ServedTable:
    table_type: str
    location: str | None
    columns: tuple[str, ...]
    partitions: dict[str, str | None]  # PART_NAME → location


Catalog = dict[str, dict[str, ServedTable]]


def read_catalog(host: str, port: int) -> Catalog:
    """Every database, table and partition the service serves, read as full objects."""
    catalog: Catalog = {}
    with hms_client(host, port) as client:
        for db in sorted(client.get_all_databases()):
            tables: dict[str, ServedTable] = {}
            for name in sorted(client.get_all_tables(db)):
                table = client.get_table(db, name)
                keys = [k.name for k in table.partitionKeys or []]
                partitions: dict[str, str | None] = {}
                if keys:
                    # by key values, named as Hive names them; PART_NAMEs that disagree
                    # with the values show up as missing/unexpected
                    for part in client.get_partitions(db, name, -1):
                        partitions[make_part_name(keys, part.values)] = (
                            part.sd.location if part.sd else None
                        )
                    served_names = set(client.get_partition_names(db, name, -1))
                    partitions.update((n, None) for n in served_names - set(partitions))
                tables[name] = ServedTable(
                    table.tableType,
                    table.sd.location if table.sd else None,
                    tuple(f"{c.name}:{c.type}" for c in (table.sd.cols if table.sd else [])),
                    partitions,
                )
            catalog[db] = tables
    return catalog


def compare_catalogs(expected: Catalog, host: str, port: int) -> CheckResult:
    """The runbook's SHOW DATABASES / SHOW TABLES / SHOW PARTITIONS, answered by the
    service, against what it served at the baseline."""
    result = CheckResult(
        "thrift_catalog_matches_baseline",
        "HMS serves the baseline's databases, tables and partitions",
    )
    try:
        actual = read_catalog(host, port)
    except (EnvironmentUnavailable, TException, OSError) as exc:
        result.error = f"cannot run: {exc}"
        return result

    def finding(subject: str, detail: str) -> None:
        result.findings.append(Finding(result.name, "error", subject, detail))

    for db in sorted(set(expected) | set(actual)):
        if db not in actual:
            finding(db, "database not served")
            continue
        if db not in expected:
            finding(db, "database not in baseline")
            continue
        for name in sorted(set(expected[db]) | set(actual[db])):
            want, got = expected[db].get(name), actual[db].get(name)
            subject = f"{db}.{name}"
            if got is None:
                finding(subject, "table not served")
            elif want is None:
                finding(subject, "table not in baseline")
            elif (want.table_type, want.location, want.columns) != (
                got.table_type,
                got.location,
                got.columns,
            ):
                finding(subject, f"served as {got.table_type} at {got.location}")
            else:
                missing = sorted(set(want.partitions) - set(got.partitions))
                extra = sorted(set(got.partitions) - set(want.partitions))
                moved = sorted(
                    p
                    for p in set(want.partitions) & set(got.partitions)
                    if want.partitions[p] != got.partitions[p]
                )
                for label, names in (("missing", missing), ("unexpected", extra), ("moved", moved)):
                    if names:
                        finding(subject, f"{len(names)} partitions {label}, e.g. {names[0]}")
    return result


# ------------------------------------------------------------------ creating through Thrift


def create_database(client: Any, name: str, location: str) -> None:
    client.create_database(
        ttypes.Database(name=name, description=f"{name} data", locationUri=location, parameters={})
    )


def storage(location: str | None, columns: list[tuple[str, str]]) -> Any:
    return ttypes.StorageDescriptor(
        cols=[ttypes.FieldSchema(name=n, type=t, comment=None) for n, t in columns],
        location=location,
        inputFormat=PARQUET_IN,
        outputFormat=PARQUET_OUT,
        compressed=False,
        numBuckets=-1,
        serdeInfo=ttypes.SerDeInfo(
            name=None, serializationLib=PARQUET_SERDE, parameters={"serialization.format": "1"}
        ),
        bucketCols=[],
        sortCols=[],
        parameters={},
    )


def create_table(
    client: Any,
    database: str,
    name: str,
    location: str,
    columns: list[tuple[str, str]],
    partition_keys: tuple[str, ...] = (),
    external: bool = True,
    created: int = 0,
) -> None:
    client.create_table(
        ttypes.Table(
            tableName=name,
            dbName=database,
            owner="hive",
            createTime=created,
            lastAccessTime=0,
            retention=0,
            sd=storage(location, columns),
            partitionKeys=[ttypes.FieldSchema(name=k, type="string") for k in partition_keys],
            parameters={"EXTERNAL": "TRUE"} if external else {},
            tableType="EXTERNAL_TABLE" if external else "MANAGED_TABLE",
        )
    )


def create_view(client: Any, database: str, name: str, query: str, columns: list[str]) -> None:
    client.create_table(
        ttypes.Table(
            tableName=name,
            dbName=database,
            owner="hive",
            createTime=0,
            lastAccessTime=0,
            retention=0,
            sd=storage(None, [(c, "string") for c in columns]),
            partitionKeys=[],
            parameters={},
            viewOriginalText=query,
            viewExpandedText=query,
            tableType="VIRTUAL_VIEW",
        )
    )


def add_partitions(client: Any, database: str, table: str, values: list[tuple[str, ...]]) -> None:
    """APPEND PARTITION: HMS names each partition and chooses its location (under the
    table's) with Hive's own escaping."""
    for vals in values:
        client.append_partition(database, table, list(vals))
