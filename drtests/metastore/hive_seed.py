"""A metastore written by real Hive: databases, external and managed tables, a view and
partitions created through the HMS Thrift API, so every row, id and PART_NAME is Hive's own.

Partition values include characters Hive escapes in names and paths (``:`` and ``=``), so the
suite's escaping is checked against Hive's.
"""

from __future__ import annotations

from drtests.config import SeedSettings
from drtests.metastore.seed import COLUMNS, SeededMetastore, SeededTable, partition_values
from drtests.metastore.thrift import (
    add_partitions,
    create_database,
    create_table,
    create_view,
    hms_client,
)

HIVE_DATABASES = ("production_critical", "analytics")


def seed_through_thrift(
    host: str, port: int, settings: SeedSettings, warehouse: str
) -> SeededMetastore:
    """Create the layout through the service; returns it as HMS named it."""
    columns = list(COLUMNS)
    tables: list[SeededTable] = []
    with hms_client(host, port) as client:
        for db in HIVE_DATABASES[: max(1, min(settings.databases, len(HIVE_DATABASES)))]:
            db_location = f"{warehouse}/{db}.db"
            create_database(client, db, db_location)
            layout = (
                ("fact_table", ("dt", "hr"), True),
                ("events", ("ts",), True),
                ("dim_customer", (), False),
            )
            for name, keys, external in layout:
                location = f"{db_location}/{name}"
                create_table(client, db, name, location, columns, keys, external)
                values: list[tuple[str, ...]]
                if keys == ("ts",):
                    # a timestamp with ':' and a value with '=': both escaped by Hive
                    days = partition_values(4, two_level=False)
                    values = [(f"{day[0]} 10:00:00",) for day in days]
                    values.append(("k=v",))
                elif keys:
                    values = partition_values(settings.partitions_per_table, two_level=True)
                else:
                    values = []
                add_partitions(client, db, name, values)
                names = sorted(client.get_partition_names(db, name, -1)) if keys else []
                tables.append(
                    SeededTable(
                        db,
                        name,
                        "EXTERNAL_TABLE" if external else "MANAGED_TABLE",
                        location,
                        keys,
                        names,
                    )
                )
            create_view(
                client,
                db,
                "fact_summary",
                f"SELECT dt, count(*) AS n FROM {db}.fact_table GROUP BY dt",
                ["dt", "n"],
            )
            tables.append(SeededTable(db, "fact_summary", "VIRTUAL_VIEW", None, ()))
    return SeededMetastore(warehouse, tables)
