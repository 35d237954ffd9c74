"""The large metastore (100k+ partitions): backup and restore against raw pg_dump and
pg_restore of the same database, and the consistency checks."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Row, timed
from drtests.backups import BackupCatalog
from drtests.config import SeedSettings
from drtests.errors import DRError
from drtests.metastore.checks import CHECKS, CheckContext, inventory, run_checks
from drtests.metastore.schema import SUPPORTED_VERSIONS, create_schema
from drtests.metastore.seed import seed_metastore
from drtests.metastore.service import HiveMetastoreService, find_hive_runtime
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.postgres import (
    LocalPostgres,
    PostgresEndpoint,
    connect,
    create_database,
    drop_database,
    replace_database,
)
from drtests.procedures.identity import metastore_identity
from drtests.procedures.journal import Journal
from drtests.restoretest.applications import hms_serves_copy, metastore_checks, sql_layout
from drtests.restoretest.restore import RestoredCopy, restore_to_scratch
from drtests.restoretest.scratch import ScratchServer
from drtests.restoretest.source import copy_matches_source, row_counts


def _tool(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, check=True, capture_output=True)


def _restore_test(
    ep: PostgresEndpoint, catalog: BackupCatalog, workdir: Path, raw_restore_s: float
) -> list[Row]:
    """``drtests restore-test``'s metastore part on the same backup: restore into a scratch
    database with every check of the procedure, the consistency checks on the copy, the
    comparison with the source; then HMS serving every partition of the copy."""
    scratch = ScratchServer(ep, True, "bench")
    journal = Journal()
    records = catalog.records()

    def restore_and_test() -> RestoredCopy:
        copy = restore_to_scratch(
            catalog,
            records,
            scratch,
            "metastore",
            metastore_identity(SUPPORTED_VERSIONS),
            journal,
            workdir,
            "bench",
            "metastore",
        )
        with connect(ep, copy.database, autocommit=True) as restored:
            metastore_checks(restored, ("s3a://",), None)
            with connect(ep, "metastore", autocommit=True) as live:
                copy_matches_source(row_counts(restored), row_counts(live), 0.1)
        return copy

    test_s, copy = timed(restore_and_test)
    rows: list[Row] = [
        (
            "restore test: select, download, verify, restore to scratch, checks, compare",
            f"{test_s:.2f}s",
            f"{test_s / raw_restore_s:.2f}× raw pg_restore ({raw_restore_s:.2f}s)",
        )
    ]
    try:
        runtime = find_hive_runtime()
    except DRError as exc:
        print(f"restore test: HMS step not measured ({exc})", flush=True)
        copy.drop(journal)
        return rows
    service = HiveMetastoreService(
        runtime, ep, copy.database, workdir / "hms", ("spark-data",), "s3a://spark-data/w"
    )
    try:
        start_s = service.start()
        with connect(ep, copy.database, autocommit=True) as restored:
            layout = sql_layout(restored)
        serve_s, served = timed(lambda: hms_serves_copy(service.host, service.port, layout))
    finally:
        service.stop()
        copy.drop(journal)
    partitions = sum(sum(t.values()) for t in layout.values())
    rows.append(
        (
            "restore test: HMS 2.3 serves every table and partition of the copy",
            f"{serve_s:.2f}s",
            f"{partitions / serve_s:,.0f} partitions/s; HMS start {start_s:.1f}s; "
            f"{'clean' if served.ok else 'FINDINGS'}",
        )
    )
    return rows


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

        rows += _restore_test(ep, catalog, workdir, restore_s)

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
