"""Benchmarks: figures and ratios against baselines measured in the same run, never
assertions on time.

    ./run bench                          # all sections
    ./run bench --only s3 --s3-objects 5000
    ./run bench --only s3-scale --s3-scale-synthetic 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import checks, metastore, objectstore, pitr, repair, s3scale
from benchmarks.common import Row, timed
from drtests.config import SeedSettings
from drtests.objectstore import LocalS3Server

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks")
    parser.add_argument(
        "--only",
        choices=("metastore", "checks", "msck", "pitr", "s3", "s3-scale", "gameday"),
        action="append",
    )
    parser.add_argument(
        "--check-sizes",
        default="2000,20000",
        help="partitions per partitioned table for the checks section (50 such tables)",
    )
    parser.add_argument("--databases", type=int, default=5)
    parser.add_argument("--tables", type=int, default=12)
    parser.add_argument("--partitions", type=int, default=2000, help="per partitioned table")
    parser.add_argument("--msck-partitions", type=int, default=100_000)
    parser.add_argument("--pitr-wal-mb", type=int, default=1024)
    parser.add_argument("--s3-objects", type=int, default=1000)
    parser.add_argument("--s3-object-kib", type=int, default=64)
    parser.add_argument(
        "--s3-scale-objects", type=int, default=2000, help="objects of the s3-scale lake"
    )
    parser.add_argument(
        "--s3-scale-synthetic",
        type=int,
        default=1_000_000,
        help="objects of the synthetic inventory (also run at a tenth, for memory growth)",
    )
    args = parser.parse_args()
    sections = set(
        args.only or ("metastore", "checks", "msck", "pitr", "s3", "s3-scale", "gameday")
    )

    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="drtests-bench-"))
    workdir.chmod(0o755)
    s3 = LocalS3Server(workdir, "primary")
    try:
        s3.start()
        if "metastore" in sections:
            settings = SeedSettings(
                databases=args.databases,
                tables_per_database=args.tables,
                partitions_per_table=args.partitions,
                write_objects=False,
            )
            rows += metastore.run(workdir, s3, settings)
        if "checks" in sections:
            sizes = tuple(int(n) for n in args.check_sizes.split(","))
            rows += checks.run(workdir, sizes)
        if "msck" in sections:
            rows += repair.run(workdir, args.msck_partitions)
        if "pitr" in sections:
            rows += pitr.run(workdir, s3, args.pitr_wal_mb)
        if "s3" in sections:
            rows += objectstore.run(s3, args.s3_objects, args.s3_object_kib)
        if "s3-scale" in sections:
            rows += s3scale.run(s3, args.s3_scale_objects, args.s3_scale_synthetic)
    finally:
        s3.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if "gameday" in sections:
        walls: dict[int, float] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRTESTS_")}

        def gameday(workers: int, reports: str) -> None:
            argv = [sys.executable, "-m", "drtests.cli", "gameday", "--report-dir", reports]
            subprocess.run(
                [*argv, "-n", str(workers)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )

        for workers in (1, 2):
            with tempfile.TemporaryDirectory() as reports:
                walls[workers], _ = timed(lambda: gameday(workers, reports))  # noqa: B023
        rows.append(("whole game day, 1 worker (the baseline)", f"{walls[1]:.1f}s", ""))
        rows.append(
            (
                "whole game day, 2 workers (./run gameday)",
                f"{walls[2]:.1f}s",
                f"{walls[1] / walls[2]:.2f}× speed-up over 1 worker",
            )
        )

    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'time':>8}  ratio / rate")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>8}  {ratio}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the benchmark process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
