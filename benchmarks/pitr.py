"""Point-in-time recovery: WAL replay time per GB, against the time the primary took to
write the same WAL (measured in the same run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Row, timed
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.pitr import WalShipper, enable_archiving, recover_to, take_base_backup
from drtests.postgres import LocalPostgres, connect

BUCKET = "spark-backups"
ROWS_PER_BATCH = 200_000


def _write_wal(pg: LocalPostgres, megabytes: int) -> int:
    """Insert batches until the primary has written ``megabytes`` of WAL; returns bytes."""
    with connect(pg.endpoint, "postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS load (id bigint, payload text)")
        start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert start is not None
        written = 0
        while written < megabytes * 1024 * 1024:
            conn.execute(
                "INSERT INTO load SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, %s) g",
                (ROWS_PER_BATCH,),
            )
            row = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (start[0],)).fetchone()
            written = int(row[0]) if row else 0
    return written


def run(workdir: Path, s3: LocalS3Server, wal_megabytes: int) -> list[Row]:
    client = s3.endpoint("us-east-1").client()
    ensure_bucket(client, BUCKET, versioned=False)
    pg = LocalPostgres(workdir / "postgres-pitr")
    recovery = None
    try:
        pg.init()
        enable_archiving(pg, workdir / "wal-spool")
        pg.start()
        shipper = WalShipper(workdir / "wal-spool", client, BUCKET, "pitr-bench/wal/")
        base = take_base_backup(pg.endpoint, workdir, client, BUCKET, "pitr-bench/base.tar.gz")
        write_s, wal_bytes = timed(lambda: _write_wal(pg, wal_megabytes))
        target = datetime.now(UTC)
        with connect(pg.endpoint, "postgres", autocommit=True) as conn:
            # a commit after the target: recovery stops there instead of running out of WAL
            conn.execute("CREATE TABLE after_target ()")
        ship_s, segments = timed(lambda: shipper.flush(pg.endpoint, timeout=300))
        print(
            f"PITR: {wal_bytes / 1e9:.2f} GB of WAL written in {write_s:.1f}s, "
            f"{segments} segments shipped in {ship_s:.1f}s",
            flush=True,
        )
        total_s, recovery = timed(
            lambda: recover_to(pg, base, client, "pitr-bench/wal/", target, workdir / "recovered")
        )
        gigabytes = wal_bytes / 1e9
        replay = recovery.replay_seconds
        return [
            (
                f"PITR replay of {gigabytes:.2f} GB WAL (start → promoted)",
                f"{replay:.2f}s",
                f"{replay / gigabytes:.1f}s per GB; {replay / write_s:.2f}× the primary's "
                f"write time ({write_s:.1f}s)",
            ),
            (
                "PITR total: fetch base backup and WAL from S3, verify, replay",
                f"{total_s:.2f}s",
                f"{total_s / gigabytes:.1f}s per GB",
            ),
        ]
    finally:
        if recovery is not None:
            recovery.server.stop()
        pg.stop()
