"""The large metastore (100k+ partitions): backup and restore against raw pg_dump and
pg_restore of the same database, and the consistency checks."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Row, timed
from drtests.backups import BackupCatalog
from drtests.config import SeedSettings
from drtests.metastore.checks import CHECKS, CheckContext, inventory, run_checks
from drtests.metastore.schema import create_schema
from drtests.metastore.seed import seed_metastore
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.postgres import (
    LocalPostgres,
    connect,
    create_database,
    drop_database,
    replace_database,
)


def _tool(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, check=True, capture_output=True)


def run(workdir: Path, s3: LocalS3Server, settings: SeedSettings) -> list[Row]:
    rows: list[Row] = []
    pg = LocalPostgres(workdir / "postgres")
    try:
        pg.init()
        pg.start()
        ep = pg.endpoint
        create_database(ep, "metastore")
        with connect(ep, "metastore", autocommit=True) as conn:
            create_schema(conn)
            seed_s, seeded = timed(lambda: seed_metastore(conn, settings))
            size = conn.execute("SELECT pg_database_size('metastore')").fetchone()
        partitions = seeded.partition_count
        print(
            f"large metastore: {partitions:,} partitions, {len(seeded.tables)} tables, "
            f"{(size[0] if size else 0) / 1e6:.0f} MB, seeded in {seed_s:.1f}s",
            flush=True,
        )

        env = ep.tool_env()
        raw_dump = workdir / "raw.dump"
        dump_s, _ = timed(
            lambda: _tool(
                [
                    ep.tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "-f",
                    str(raw_dump),
                    *ep.tool_args("metastore"),
                ],
                env,
            )
        )
        ensure_bucket(s3.endpoint("us-east-1").client(), "spark-backups")
        catalog = BackupCatalog(s3.endpoint("us-east-1"), "spark-backups")
        backup_s, record = timed(lambda: catalog.create(ep, "metastore", datetime.now(UTC)))
        rows.append(
            (
                "HMS backup: pg_dump streamed to S3, SHA-256/MD5, manifest",
                f"{backup_s:.2f}s",
                f"{backup_s / dump_s:.2f}× raw pg_dump to file ({dump_s:.2f}s)",
            )
        )

        create_database(ep, "raw_restore")
        restore_s, _ = timed(
            lambda: _tool(
                [ep.tool("pg_restore"), "--no-owner", *ep.tool_args("raw_restore"), str(raw_dump)],
                env,
            )
        )
        drop_database(ep, "raw_restore")

        def drtests_restore() -> None:
            local = catalog.download(record, workdir)
            catalog.verify(record, local)
            replace_database(ep, "metastore", local)

        ours_s, _ = timed(drtests_restore)
        rows.append(
            (
                "HMS restore: download, verify, staging restore, swap",
                f"{ours_s:.2f}s",
                f"{ours_s / restore_s:.2f}× raw pg_restore ({restore_s:.2f}s)",
            )
        )

        with connect(ep, "metastore", autocommit=True) as conn:
            expected = inventory(conn)
            sql_checks = [c for c in CHECKS if not c.needs_s3]
            check_s, results = timed(
                lambda: run_checks(CheckContext(conn, ("s3a://",), expected), sql_checks)
            )
        assert all(r.ok for r in results), [r.name for r in results if not r.ok]
        rows.append(
            (
                f"HMS consistency checks ({len(sql_checks)} SQL checks)",
                f"{check_s:.2f}s",
                f"{partitions / check_s:,.0f} partitions/s",
            )
        )
    finally:
        pg.stop()
    return rows
