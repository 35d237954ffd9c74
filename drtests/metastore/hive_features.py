"""A metastore with the features real Hive deployments use, written through the HMS Thrift
API so every row is Hive's own: several databases (one empty), managed and external tables,
a view, an index, bucketed, sorted and skewed tables, a primary key, table and partition
column statistics, functions, partition values with ``/``, ``%``, spaces and non-ASCII
characters, mixed-case names, partitions outside their table's directory, tables in two
buckets and an empty partitioned table.

The checks must find nothing wrong with it; the oracle test damages it.
"""

from __future__ import annotations

from typing import Any

from hmsclient.genthrift.hive_metastore import ttypes

from drtests.metastore.thrift import create_database, create_table, create_view, storage

COLUMNS = [("id", "bigint"), ("region", "string"), ("amount", "decimal(18,2)")]
ODD_VALUES = ("a/b", "50%", "new york", "zürich", "Q1 2026")


def _partition(client: Any, db: str, table: str, values: list[str], location: str) -> None:
    """ALTER TABLE … ADD PARTITION … LOCATION: a partition where the caller says."""
    sd = client.get_table(db, table).sd
    sd.location = location
    client.add_partition(ttypes.Partition(values=values, dbName=db, tableName=table, sd=sd))


def _table_stats(client: Any, db: str, table: str, part_name: str | None = None) -> None:
    desc = ttypes.ColumnStatisticsDesc(
        isTblLevel=part_name is None, dbName=db, tableName=table, partName=part_name
    )
    data = ttypes.ColumnStatisticsData(
        longStats=ttypes.LongColumnStatsData(lowValue=1, highValue=999, numNulls=0, numDVs=42)
    )
    stats = ttypes.ColumnStatistics(
        statsDesc=desc,
        statsObj=[ttypes.ColumnStatisticsObj(colName="id", colType="bigint", statsData=data)],
    )
    if part_name is None:
        client.update_table_column_statistics(stats)
    else:
        client.update_partition_column_statistics(stats)


def _table(name: str, sd: Any, kind: str = "MANAGED_TABLE", keys: tuple[str, ...] = ()) -> Any:
    """A table of database ``sales`` as a Thrift client describes it."""
    return ttypes.Table(
        tableName=name,
        dbName="sales",
        owner="hive",
        createTime=0,
        lastAccessTime=0,
        retention=0,
        sd=sd,
        partitionKeys=[ttypes.FieldSchema(name=k, type="string") for k in keys],
        parameters={"EXTERNAL": "TRUE"} if kind == "EXTERNAL_TABLE" else {},
        tableType=kind,
    )


def seed_feature_rich(client: Any, warehouse: str, other_bucket: str) -> None:
    """Create the layout; locations follow Hive's own layout under ``warehouse`` except where
    a feature is a different location."""
    sales = f"{warehouse}/sales.db"
    create_database(client, "Sales", sales)
    create_database(client, "empty_db", f"{warehouse}/empty_db.db")
    create_database(client, "ml", f"s3a://{other_bucket}/ml.db")

    # a managed, partitioned table with odd values, stats, and a partition elsewhere
    create_table(client, "sales", "Orders", f"{sales}/orders", COLUMNS, ("dt", "Country"), False)
    for day in ("2026-01-01", "2026-01-02"):
        for country in ODD_VALUES:
            client.append_partition("sales", "orders", [day, country])
    _partition(client, "sales", "orders", ["2025-12-31", "archive"], f"{warehouse}/archive/o1")
    _table_stats(client, "sales", "orders")
    _table_stats(client, "sales", "orders", "dt=2026-01-01/country=new york")

    # external, bucketed and sorted
    bucketed = storage(f"{sales}/customers", COLUMNS)
    bucketed.numBuckets = 4
    bucketed.bucketCols = ["id"]
    bucketed.sortCols = [ttypes.Order(col="id", order=1)]
    client.create_table(_table("customers", bucketed, "EXTERNAL_TABLE"))
    # skewed
    skewed = storage(f"{sales}/clicks", COLUMNS)
    skewed.skewedInfo = ttypes.SkewedInfo(
        skewedColNames=["region"],
        skewedColValues=[["eu"], ["us"]],
        # list bucketing locations are keyed by lists, which the Python Thrift client
        # cannot read back
        skewedColValueLocationMaps={},
    )
    client.create_table(_table("clicks", skewed))
    # a primary key
    client.create_table_with_constraints(
        _table("accounts", storage(f"{sales}/accounts", COLUMNS)),
        [
            ttypes.SQLPrimaryKey(
                table_db="sales",
                table_name="accounts",
                column_name="id",
                key_seq=1,
                pk_name="accounts_pk",
                enable_cstr=False,
                validate_cstr=False,
                rely_cstr=True,
            )
        ],
        [],
    )
    # an index over orders, with its index table
    index_sd = storage(
        f"{sales}/sales__orders_idx__", [("id", "bigint"), ("_bucketname", "string")]
    )
    index_table = _table("sales__orders_idx__", index_sd, "INDEX_TABLE", ("dt", "country"))
    client.add_index(
        ttypes.Index(
            indexName="orders_idx",
            indexHandlerClass="org.apache.hadoop.hive.ql.index.compact.CompactIndexHandler",
            dbName="sales",
            origTableName="orders",
            createTime=0,
            lastAccessTime=0,
            indexTableName="sales__orders_idx__",
            sd=storage(f"{sales}/sales__orders_idx__", COLUMNS),
            parameters={},
            deferredRebuild=True,
        ),
        index_table,
    )
    create_view(
        client,
        "sales",
        "daily_totals",
        "SELECT dt, sum(amount) FROM sales.orders GROUP BY dt",
        ["dt", "total"],
    )
    client.create_function(
        ttypes.Function(
            functionName="mask_pii",
            dbName="sales",
            className="com.example.hive.MaskPii",
            ownerName="hive",
            ownerType=ttypes.PrincipalType.USER,
            createTime=0,
            functionType=ttypes.FunctionType.JAVA,
            resourceUris=[
                ttypes.ResourceUri(
                    resourceType=ttypes.ResourceType.JAR, uri=f"{warehouse}/udf/mask.jar"
                )
            ],
        )
    )

    # the second bucket: an external table with partitions, one outside its directory
    ml = f"s3a://{other_bucket}/ml.db"
    create_table(client, "ml", "Features", f"{ml}/features", COLUMNS, ("version",), True)
    client.append_partition("ml", "features", ["v1"])
    client.append_partition("ml", "features", ["v2"])
    _partition(client, "ml", "features", ["v0"], f"s3a://{other_bucket}/legacy/features_v0")
    # an empty partitioned table
    create_table(client, "ml", "staging_runs", f"{ml}/staging_runs", COLUMNS, ("run",), False)
