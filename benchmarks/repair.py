"""MSCK REPAIR TABLE over a table with 100k+ partition directories in S3: time and S3
requests, against the bare listing of the same prefix (the least any repair must read).

The objects are put straight into an in-process moto server's backend (seeding 100k objects
over HTTP would take minutes); the repair and the baseline both go through its HTTP API.
"""

from __future__ import annotations

import logging
from pathlib import Path

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from benchmarks.common import Row, timed
from drtests.config import SeedSettings
from drtests.metastore.repair import msck_repair
from drtests.metastore.schema import create_schema
from drtests.metastore.seed import seed_metastore
from drtests.objectstore import S3Endpoint, ensure_bucket, split_uri
from drtests.postgres import LocalPostgres, connect, create_database
from drtests.processes import free_port

BUCKET = "spark-data"


def _count_listing(endpoint: S3Endpoint, prefix: str) -> tuple[int, int]:
    client = endpoint.client()
    pages = keys = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        pages += 1
        keys += page.get("KeyCount", 0)
    return pages, keys


def run(workdir: Path, partitions: int) -> list[Row]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    pg = LocalPostgres(workdir / "postgres-msck")
    try:
        endpoint = S3Endpoint("msck", f"http://127.0.0.1:{port}", "us-east-1", "bench", "bench")
        ensure_bucket(endpoint.client(), BUCKET, versioned=False)
        pg.init()
        pg.start()
        create_database(pg.endpoint, "metastore")
        with connect(pg.endpoint, "metastore", autocommit=True) as conn:
            create_schema(conn)
            seeded = seed_metastore(conn, SeedSettings(databases=1, partitions_per_table=1))
            table = next(t for t in seeded.tables if len(t.partition_keys) == 2)
            assert table.location is not None
            _, table_key = split_uri(table.location)
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            days = -(-partitions // 24)
            for i in range(days * 24):
                key = f"{table_key}/dt=d{i // 24:05d}/hr={i % 24:02d}/part-00000.snappy.parquet"
                backend.put_object(BUCKET, key, b"PAR1PAR1")
            print(f"MSCK: {days * 24:,} partition directories in S3", flush=True)

            list_s, (pages, keys) = timed(lambda: _count_listing(endpoint, table_key + "/"))
            add_s, added = timed(
                lambda: msck_repair(conn, endpoint.client(), table.database, table.name, "ADD")
            )
            sync_s, synced = timed(
                lambda: msck_repair(conn, endpoint.client(), table.database, table.name, "SYNC")
            )
        rows: list[Row] = [
            (
                f"S3 listing of the table ({keys:,} objects, {pages} requests)",
                f"{list_s:.2f}s",
                "baseline",
            ),
            (
                f"MSCK ADD: {len(added.plan.add):,} partitions, {added.plan.s3_requests} S3 "
                f"requests, {added.batches} batches",
                f"{add_s:.2f}s",
                f"{add_s / list_s:.2f}× the listing; {len(added.plan.add) / add_s:,.0f} "
                "partitions/s",
            ),
            (
                f"MSCK SYNC with nothing to change ({synced.plan.s3_requests} S3 requests)",
                f"{sync_s:.2f}s",
                f"{sync_s / list_s:.2f}× the listing",
            ),
        ]
        # Hive's own checker lists every directory level: one request per directory
        directories = days * 24 + days + 1
        rows.append(
            (
                "  S3 requests a per-directory walk would make (Hive's HiveMetaStoreChecker)",
                f"{directories:,}",
                f"{directories / max(added.plan.s3_requests, 1):,.0f}× the requests made here",
            )
        )
        return rows
    finally:
        pg.stop()
        server.stop()
