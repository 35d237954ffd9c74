"""Benchmarks on the large metastore (100k+ partitions), printed as figures and as ratios
against baselines measured in the same run: raw pg_dump/pg_restore of the same database.

    ./run bench                      # default sizes
    ./run bench --partitions 4000    # bigger
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from drtests.backups import BackupCatalog
from drtests.config import SeedSettings
from drtests.metastore.checks import CHECKS, CheckContext, inventory, run_checks
from drtests.metastore.schema import create_schema
from drtests.metastore.seed import seed_metastore
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.postgres import LocalPostgres, connect, create_database, drop_database
from drtests.procedures import replace_database

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_tool(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks")
    parser.add_argument("--databases", type=int, default=5)
    parser.add_argument("--tables", type=int, default=12)
    parser.add_argument("--partitions", type=int, default=2000, help="per partitioned table")
    parser.add_argument("--skip-gameday", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="drtests-bench-"))
    workdir.chmod(0o755)
    pg = LocalPostgres(workdir / "postgres")
    s3 = LocalS3Server(workdir, "primary")
    rows: list[tuple[str, str, str]] = []
    try:
        pg.init()
        pg.start()
        s3.start()
        ep = pg.endpoint
        settings = SeedSettings(
            databases=args.databases,
            tables_per_database=args.tables,
            partitions_per_table=args.partitions,
            write_objects=False,
        )
        create_database(ep, "metastore")
        with connect(ep, "metastore", autocommit=True) as conn:
            create_schema(conn)
            seed_s, seeded = timed(lambda: seed_metastore(conn, settings))
            size = conn.execute("SELECT pg_database_size('metastore')").fetchone()
        partitions = seeded.partition_count
        db_mb = (size[0] if size else 0) / 1e6
        print(
            f"large metastore: {partitions:,} partitions, {len(seeded.tables)} tables, "
            f"{db_mb:.0f} MB, seeded in {seed_s:.1f}s",
            flush=True,
        )

        env = ep.tool_env()
        raw_dump = workdir / "raw.dump"
        dump_s, _ = timed(
            lambda: run_tool(
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
        client = s3.endpoint("us-east-1").client()
        ensure_bucket(client, "spark-backups")
        catalog = BackupCatalog(s3.endpoint("us-east-1"), "spark-backups")
        backup_s, record = timed(lambda: catalog.create(ep, "metastore", datetime.now(UTC)))
        rows.append(
            (
                "backup: pg_dump → S3 with SHA-256/MD5, manifest",
                f"{backup_s:.2f}s",
                f"{backup_s / dump_s:.2f}× raw pg_dump to file ({dump_s:.2f}s)",
            )
        )

        create_database(ep, "raw_restore")
        restore_s, _ = timed(
            lambda: run_tool(
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
                "restore: download, verify, staging restore, swap",
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
                f"consistency checks ({len(sql_checks)} SQL checks)",
                f"{check_s:.2f}s",
                f"{partitions / check_s:,.0f} partitions/s",
            )
        )
    finally:
        s3.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if not args.skip_gameday:
        with tempfile.TemporaryDirectory() as reports:
            clean_env = {k: v for k, v in os.environ.items() if not k.startswith("DRTESTS_")}
            gameday_s, _ = timed(
                lambda: subprocess.run(
                    [sys.executable, "-m", "drtests.cli", "gameday", "--report-dir", reports],
                    cwd=ROOT,
                    env=clean_env,
                    check=True,
                    capture_output=True,
                )
            )
        rows.append(("whole small game day (./run gameday, 2 workers)", f"{gameday_s:.1f}s", ""))

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'time':>8}  ratio / rate")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>8}  {ratio}")
    print(f"\npeak RSS of the benchmark process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
