"""The SQL consistency checks at 100k and 1M partitions: each check's time and the peak RSS
of the process that ran them, so growth with the number of partitions is visible.

Each size runs its checks in a fresh child process: its peak RSS is that size's alone.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from benchmarks.common import Row, timed
from drtests.config import SeedSettings
from drtests.metastore.checks import CHECKS, CheckContext, inventory, run_checks
from drtests.metastore.objects import definitions
from drtests.metastore.schema import create_schema
from drtests.metastore.seed import seed_metastore
from drtests.postgres import LocalPostgres, connect, create_database

#: partitions per partitioned table: 5 databases, 10 partitioned tables in each
SIZES = (2_000, 20_000)


def run(workdir: Path, sizes: tuple[int, ...] = SIZES) -> list[Row]:
    rows: list[Row] = []
    pg = LocalPostgres(workdir / "postgres-checks")
    try:
        pg.init()
        pg.start()
        ep = pg.endpoint
        for per_table in sizes:
            database = f"checks_{per_table}"
            create_database(ep, database)
            settings = SeedSettings(
                databases=5,
                tables_per_database=12,
                partitions_per_table=per_table,
                write_objects=False,
            )
            with connect(ep, database, autocommit=True) as conn:
                create_schema(conn)
                seed_s, seeded = timed(lambda: seed_metastore(conn, settings))  # noqa: B023
                conn.execute("VACUUM ANALYZE")
            partitions = seeded.partition_count
            print(f"checks: {partitions:,} partitions seeded in {seed_s:.0f}s", flush=True)
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.checks", ep.dsn(database)],
                capture_output=True,
                text=True,
                check=True,
            )
            measured = json.loads(child.stdout)
            total = sum(measured["checks"].values())
            label = f"{partitions / 1e6:g}M" if partitions >= 1e6 else f"{partitions // 1000}k"
            for name, seconds in sorted(measured["checks"].items(), key=lambda kv: -kv[1]):
                rows.append((f"  check {name} ({label} partitions)", f"{seconds:.2f}s", ""))
            together = measured["together"]
            rows += [
                (f"HMS SQL checks one by one, sum ({label} partitions)", f"{total:.2f}s", ""),
                (
                    f"HMS SQL checks, all ({label} partitions, two connections)",
                    f"{together:.2f}s",
                    f"{total / together:.2f}x one connection; {partitions / together:,.0f} "
                    f"partitions/s; peak RSS of the checking process "
                    f"{measured['peak_rss_mb']:.0f} MB",
                ),
            ]
    finally:
        pg.stop()
    return rows


def _child(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        ctx = CheckContext(conn, ("s3a://",), inventory(conn), None, definitions(conn))
        sql_checks = [check for check in CHECKS if not check.needs_s3]
        times: dict[str, float] = {}
        for check in sql_checks:
            seconds, results = timed(lambda: run_checks(ctx, [check]))  # noqa: B023
            if not results[0].ok:
                raise SystemExit(f"{check.name} not clean: {results[0]}")
            times[check.name] = seconds
        # as a detection or verification runs them: all at once, on two connections
        together, results = timed(lambda: run_checks(ctx, sql_checks))
        if not all(r.ok for r in results):
            raise SystemExit(f"not clean: {[r for r in results if not r.ok]}")
    print(json.dumps({"checks": times, "together": together, "peak_rss_mb": _high_water_mb()}))


def _high_water_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    _child(sys.argv[1])
