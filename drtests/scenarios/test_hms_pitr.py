"""Hive Metastore — Option 4, Point-in-Time Recovery (runbook 002), and the restore
procedure's Rollback Option 2, which uses the same machinery.

The metastore runs on a cluster of its own with continuous WAL archiving to
``s3://spark-backups/hive-metastore/wal/``; a base backup is taken, a stream of committed
metastore changes follows, the incident destroys the schema, and the cluster is recovered to
a point between two of those changes. Every change committed before the target must be back
and none after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtests.config import SeedSettings
from drtests.environments import Environment
from drtests.faults import DatabaseTarget, DropMetastoreSchema
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import commit_partition_stats_updates
from drtests.metastore.schema import create_schema
from drtests.metastore.seed import SeededMetastore, seed_metastore
from drtests.metastore.verify import compare_fingerprints, detect, take_baseline
from drtests.pitr import (
    WalShipper,
    commit_times,
    enable_archiving,
    recover_to,
    replace_cluster,
    take_base_backup,
)
from drtests.plugin import DRSession
from drtests.postgres import (
    LocalPostgres,
    connect,
    create_database,
    dump_database,
    replace_database,
)
from drtests.procedures import RUNBOOK_HMS, RUNBOOK_RESTORE
from drtests.results import CheckResult, Finding, RpoMeasurement

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]
WRITES = 6
TARGET_AFTER = 3  # the recovery target lies between write 3 and write 4


@pytest.fixture
def archived_cluster(
    dr: DRSession, dr_environment: Environment, seeded_metastore: SeededMetastore | None
) -> Iterator[tuple[LocalPostgres, WalShipper, Path]]:
    """A metastore cluster of its own, archiving WAL to S3 (a recovery rewinds a whole
    cluster, so it cannot share one with other scenarios), from the embedded binaries in
    containers mode too: the procedure works on its data directory and WAL. It is seeded
    like the shared one, whose data files in S3 (``seeded_metastore``) it points at."""
    if not dr_environment.owned:
        pytest.skip("point-in-time recovery of a live cluster is run by its operator's tooling")
    workdir = dr_environment.workdir / f"pitr-{time.monotonic_ns()}"
    workdir.mkdir()
    workdir.chmod(0o755)
    pg = LocalPostgres(workdir / "cluster", name="metastore-postgres")
    pg.init()
    spool = workdir / "wal-spool"
    enable_archiving(pg, spool)
    pg.start()
    dr.safety.ephemeral_targets.add(f"postgresql://127.0.0.1:{pg.port}/*")  # made by this run
    try:
        create_database(pg.endpoint, "metastore")
        with connect(pg.endpoint, "metastore", autocommit=True) as conn:
            create_schema(conn)
            seed_metastore(conn, SeedSettings(), dr.profile.buckets.data[0])
        shipper = WalShipper(
            spool,
            dr_environment.s3_primary.client(),
            dr.profile.buckets.backups,
            f"hive-metastore/wal/{workdir.name}/",
        )
        yield pg, shipper, workdir
    finally:
        pg.stop()


@pytest.mark.parametrize("recover", [True, False], ids=["pitr", "no-pitr"])
def test_point_in_time_recovery(
    recover: bool,
    dr: DRSession,
    scenario: ScenarioRecorder,
    archived_cluster: tuple[LocalPostgres, WalShipper, Path],
    inject_fault: InjectFault,
) -> None:
    pg, shipper, workdir = archived_cluster
    scenario.begin(
        "hms_pitr",
        "metastore",
        "Point-in-time recovery after the schema was dropped",
        f"{RUNBOOK_HMS} · Remediation Option 4" + ("" if recover else " (skipped)"),
        kind="scenario" if recover else "negative-control",
    )
    target = DatabaseTarget(pg.endpoint, "metastore", "local", workdir)
    client = shipper.client

    with scenario.journal.step("Base backup", f"{RUNBOOK_HMS} · Prevention 1") as step:
        base = take_base_backup(
            pg.endpoint,
            workdir,
            client,
            shipper.bucket,
            f"hive-metastore/base/{workdir.name}.tar.gz",
        )
        step.detail = f"s3://{base.bucket}/{base.key} ({base.size} bytes), pg_verifybackup passed"
    events: list[int] = []
    with target.connect() as conn:
        for n in range(WRITES):
            events += commit_partition_stats_updates(conn, 1)
            if n + 1 == TARGET_AFTER:
                at_target = take_baseline(conn)
            time.sleep(0.3)
        committed = commit_times(conn, "NOTIFICATION_LOG", "EVENT_ID")
    before, after = committed[events[TARGET_AFTER - 1]], committed[events[TARGET_AFTER]]
    restore_point = before + (after - before) / 2

    scenario.incident()
    inject_fault(DropMetastoreSchema(), target)
    with target.connect() as conn:
        scenario.detected(
            detect(conn, at_target, dr.profile.metastore.location_allow_list, client),
            DropMetastoreSchema.detected_by,
        )

    if recover:
        with scenario.journal.step("Archive the last WAL", f"{RUNBOOK_HMS} · Option 4") as step:
            step.detail = f"{shipper.flush(pg.endpoint)} segments shipped to s3://{shipper.bucket}/{shipper.prefix}"
        with scenario.journal.step(
            "Identify restore point", f"{RUNBOOK_HMS} · Option 4 step 2"
        ) as step:
            step.detail = f"recovery_target_time {restore_point.isoformat()}"
        with scenario.journal.step(
            "Restore to point in time", f"{RUNBOOK_HMS} · Option 4 step 3"
        ) as step:
            recovery = recover_to(
                pg, base, client, shipper.prefix, restore_point, workdir / "recovery"
            )
            gb = recovery.wal_bytes / 1e9
            step.detail = (
                f"replayed {recovery.wal_bytes} bytes of WAL in {recovery.replay_seconds:.2f}s "
                f"({recovery.replay_seconds / gb:.1f} s/GB)"
            )
        with scenario.journal.step(
            "Replace the damaged data directory", f"{RUNBOOK_HMS} · Option 4 step 3"
        ) as step:
            kept = replace_cluster(pg, recovery)
            step.detail = f"damaged directory kept as {kept.name}"
        scenario.restored(f"s3://{base.bucket}/{base.key} + WAL to {restore_point.isoformat()}")

    with target.connect() as conn:
        results = detect(conn, at_target, dr.profile.metastore.location_allow_list, client)
        results.append(compare_fingerprints(conn, at_target))
        try:
            survived = set(commit_times(conn, "NOTIFICATION_LOG", "EVENT_ID"))
        except Exception:
            conn.rollback()
            survived = set()
    boundary = CheckResult(
        "transactions_up_to_target", "every commit before the target, none after"
    )
    for n, event in enumerate(events):
        should = n < TARGET_AFTER
        if (event in survived) != should:
            boundary.findings.append(
                Finding(
                    boundary.name,
                    "error",
                    f"event {event}",
                    "missing" if should else "present after the target",
                )
            )
    verified = scenario.verified([*results, boundary])
    if not recover:
        assert not verified
        return
    assert scenario.incident_time is not None
    lost = WRITES - TARGET_AFTER
    scenario.measured_rpo(
        RpoMeasurement(lost, int(before.timestamp()), scenario.incident_time - before.timestamp())
    )
    scenario.assert_objectives_met()


def test_rollback_by_point_in_time_recovery(
    dr: DRSession,
    scenario: ScenarioRecorder,
    archived_cluster: tuple[LocalPostgres, WalShipper, Path],
) -> None:
    """Rollback Procedure, Option 2: a restore from a stale dump "causes issues" (it throws
    away the changes made since); the cluster is recovered to the moment before that
    restore began. Nothing committed before the restore may be lost."""
    pg, shipper, workdir = archived_cluster
    scenario.begin(
        "hms_rollback",
        "metastore",
        "Rollback of a bad restore by point-in-time recovery",
        f"{RUNBOOK_RESTORE} · Rollback Procedure Option 2",
    )
    target = DatabaseTarget(pg.endpoint, "metastore", "local", workdir)
    stale = workdir / "stale.dump"
    dump_database(pg.endpoint, "metastore", stale)
    base = take_base_backup(
        pg.endpoint,
        workdir,
        shipper.client,
        shipper.bucket,
        f"hive-metastore/base/{workdir.name}-rollback.tar.gz",
    )
    with target.connect() as conn:
        events = commit_partition_stats_updates(conn, 3)
        before_restore_state = take_baseline(conn)
    time.sleep(0.5)
    before_restore = datetime.now(UTC)
    time.sleep(0.5)

    scenario.incident()
    with scenario.journal.step("Restore that causes issues", f"{RUNBOOK_RESTORE} · §1 step 3"):
        replace_database(pg.endpoint, "metastore", stale)
    with target.connect() as conn:
        assert not set(events) & set(commit_times(conn, "NOTIFICATION_LOG", "EVENT_ID"))

    with scenario.journal.step(
        "Archive the last WAL", f"{RUNBOOK_RESTORE} · Rollback Option 2"
    ) as step:
        step.detail = f"{shipper.flush(pg.endpoint)} segments shipped"
    with scenario.journal.step(
        "Recover to the moment before the restore", f"{RUNBOOK_RESTORE} · Rollback Option 2"
    ) as step:
        recovery = recover_to(
            pg, base, shipper.client, shipper.prefix, before_restore, workdir / "rollback"
        )
        kept = replace_cluster(pg, recovery)
        step.detail = (
            f"recovery_target_time {before_restore.isoformat()}; replayed in "
            f"{recovery.replay_seconds:.2f}s; bad state kept as {kept.name}"
        )
    scenario.restored(f"s3://{base.bucket}/{base.key} + WAL to {before_restore.isoformat()}")

    with target.connect() as conn:
        results = detect(
            conn, before_restore_state, dr.profile.metastore.location_allow_list, shipper.client
        )
        results.append(compare_fingerprints(conn, before_restore_state))
        survived = set(commit_times(conn, "NOTIFICATION_LOG", "EVENT_ID"))
    kept_all = CheckResult(
        "changes_before_the_restore_kept", "every change made before the restore"
    )
    kept_all.findings = [
        Finding(kept_all.name, "error", f"event {e}", "missing")
        for e in events
        if e not in survived
    ]
    scenario.verified([*results, kept_all])
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        RpoMeasurement(
            len(kept_all.findings),
            None,
            0.0 if not kept_all.findings else scenario.incident_time - before_restore.timestamp(),
        )
    )
    scenario.assert_objectives_met()
