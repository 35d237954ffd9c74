"""Hive Metastore restore — the restore procedure's Troubleshooting and Rollback Procedure
(000), as scenarios:

- Restore Failed: Checksum Mismatch → re-download, try the previous backup; when every backup
  is corrupt, escalate and change nothing.
- Restore Failed: Database Connection Error → the procedure fails cleanly, nothing
  half-restored is left; once the database answers, the restore is run again.
- Rollback Procedure, Option 1 → a restore that causes issues is reverted from the safety
  snapshot, verified by fingerprint.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from drtests.backups import BackupCatalog, BackupRecord
from drtests.errors import NoVerifiedBackup, RestoreFailed
from drtests.faults import DeleteDatabaseTables, DropMetastoreSchema
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.metastore.verify import Baseline, compare_fingerprints
from drtests.postgres import TableFingerprint, connect, database_exists, table_fingerprints
from drtests.procedures import RUNBOOK_RESTORE, MetastoreRestoreTarget, hms_full_restore
from drtests.procedures.metastore import rollback_from_snapshot
from drtests.results import CheckResult, RpoMeasurement

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]
TROUBLESHOOTING = f"{RUNBOOK_RESTORE} · Troubleshooting"


def _backup(catalog: BackupCatalog, metastore: MetastoreUnderTest, age_s: int) -> BackupRecord:
    taken_at = datetime.now(UTC) - timedelta(seconds=age_s)
    return catalog.create(metastore.target.endpoint, metastore.target.database, taken_at)


def _corrupt_in_storage(catalog: BackupCatalog, record: BackupRecord) -> None:
    """Bit rot in the backup bucket: bytes change, the recorded checksums do not."""
    body = bytearray(catalog.client.get_object(Bucket=record.bucket, Key=record.key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    catalog.client.put_object(
        Bucket=record.bucket,
        Key=record.key,
        Body=bytes(body),
        Metadata={"sha256": record.sha256, "md5checksum": record.md5},
    )


def test_checksum_mismatch_falls_back_to_the_previous_backup(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Restore when the newest backup is corrupt",
        f"{TROUBLESHOOTING} · Restore Failed: Checksum Mismatch",
    )
    scenario.authorize(sabotage_catalog.target, "write metastore backups")
    metastore.commit_changes(1)
    previous_day = metastore.baseline()
    older = _backup(sabotage_catalog, metastore, age_s=20)
    metastore.commit_changes(2)
    newest = _backup(sabotage_catalog, metastore, age_s=10)
    _corrupt_in_storage(sabotage_catalog, newest)
    changes_before_fault = metastore.change_log()

    scenario.incident()
    inject_fault(fault)
    assert set(fault.detected_by) <= scenario.detected(
        metastore.detect(previous_day), fault.detected_by
    )

    outcome = hms_full_restore(
        metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
    )
    assert outcome.backup == older
    assert [r.split(":")[0] for r in outcome.rejected] == [newest.key]
    scenario.finding(f"backup {newest.key} rejected after re-download; fell back to {older.key}")
    scenario.restored(older.uri)

    scenario.verified(metastore.verify(previous_day))
    assert scenario.incident_time is not None
    rpo = measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    assert rpo.lost_changes == 2, "the changes between the two backups are lost"
    scenario.measured_rpo(rpo)
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_every_backup_corrupt_escalates_and_changes_nothing(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Restore when every backup is corrupt",
        f"{TROUBLESHOOTING} · Restore Failed: Checksum Mismatch (all backups)",
        kind="negative-control",
    )
    baseline = metastore.baseline()
    for age in (30, 20, 10):
        _corrupt_in_storage(sabotage_catalog, _backup(sabotage_catalog, metastore, age_s=age))
    scenario.incident()
    inject_fault(fault)
    damaged = metastore.baseline()

    with pytest.raises(NoVerifiedBackup, match=r"\(3: .*escalate to Level 4: Database Team"):
        hms_full_restore(
            metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
        )
    scenario.finding("every backup failed verification: escalated, nothing changed")

    assert metastore.baseline().fingerprints == damaged.fingerprints
    for service in (metastore_services.metastore_service, *metastore_services.dependents):
        metastore_services.platform.wait_ready(service, 30)
    assert not scenario.verified(metastore.verify(baseline))


def _kill_restore_session(metastore: MetastoreUnderTest, stop: threading.Event) -> None:
    """The connection error: the server ends pg_restore's session mid-restore."""
    staging = f"{metastore.target.database}__restoring"
    with connect(metastore.target.endpoint, "postgres", autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'pg_restore'",
                (staging,),
            ).fetchone()
            if row is not None and row[0]:
                return
            stop.wait(0.005)


def test_connection_error_during_restore_leaves_nothing_half_restored(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = DropMetastoreSchema()
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Connection lost while restoring",
        f"{TROUBLESHOOTING} · Restore Failed: Database Connection Error",
    )
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    metastore.commit_changes(1)
    baseline = metastore.baseline()
    backup = _backup(backup_catalog, metastore, age_s=1)
    changes_before_fault = metastore.change_log()
    scenario.incident()
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)
    damaged = _fingerprints(metastore)

    stop = threading.Event()
    killer = threading.Thread(target=_kill_restore_session, args=(metastore, stop), daemon=True)
    killer.start()
    try:
        with pytest.raises(RestoreFailed, match="connection to the database lost"):
            hms_full_restore(
                metastore_services, backup_catalog, scenario.incident_at, scenario.journal
            )
    finally:
        stop.set()
        killer.join()
    scenario.finding("first restore attempt lost its database connection and was abandoned")
    leftovers = [
        d
        for d in (
            f"{metastore.target.database}__restoring",
            f"{metastore.target.database}__retired",
        )
        if database_exists(metastore.target.endpoint, d)
    ]
    assert leftovers == [], f"half-restored databases left behind: {leftovers}"
    assert _fingerprints(metastore) == damaged, "the live database changed"

    # Resolution: the database answers again; run the restore again
    outcome = hms_full_restore(
        metastore_services, backup_catalog, scenario.incident_at, scenario.journal
    )
    assert outcome.backup == backup
    scenario.restored(backup.uri)
    scenario.verified(metastore.verify(baseline))
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()


def _fingerprints(metastore: MetastoreUnderTest) -> dict[str, TableFingerprint]:
    with metastore.connect() as conn:
        return table_fingerprints(conn)


def compare_fingerprints_against(metastore: MetastoreUnderTest, state: Baseline) -> CheckResult:
    with metastore.connect() as conn:
        return compare_fingerprints(conn, state)


@pytest.mark.parametrize("rollback", [True, False], ids=["rollback", "no-rollback"])
def test_rollback_procedure_returns_to_the_state_before_the_restore(
    rollback: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    """A restore from a backup that predates a whole database "causes issues"; the Rollback
    Procedure reverts it from the safety snapshot. Without the rollback (negative control)
    the state before the restore is not back."""
    fault = DeleteDatabaseTables("analytics")
    scenario.begin(
        "hms_rollback",
        "metastore",
        "Rollback of a restore that caused issues",
        f"{RUNBOOK_RESTORE} · Rollback Procedure Option 1" + ("" if rollback else " (skipped)"),
        kind="scenario" if rollback else "negative-control",
    )
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    with metastore.connect() as conn:  # the stale backup: before database 'staging' existed
        conn.execute('UPDATE "DBS" SET "NAME" = \'staging_tmp\' WHERE "NAME" = \'staging\'')
    _backup(backup_catalog, metastore, age_s=1)
    with metastore.connect() as conn:
        conn.execute('UPDATE "DBS" SET "NAME" = \'staging\' WHERE "NAME" = \'staging_tmp\'')
    scenario.incident()
    inject_fault(fault)
    before_restore = metastore.baseline()
    changes_before_restore = metastore.change_log()

    outcome = hms_full_restore(
        metastore_services, backup_catalog, scenario.incident_at, scenario.journal
    )
    assert not compare_fingerprints_against(metastore, before_restore).ok
    scenario.finding("restored metastore names database staging_tmp instead of staging")
    if rollback:
        assert outcome.safety_snapshot is not None
        rollback_from_snapshot(metastore_services, outcome.safety_snapshot, scenario.journal)
        scenario.restored(f"safety snapshot {outcome.safety_snapshot}")

    verified = scenario.verified([compare_fingerprints_against(metastore, before_restore)])
    if not rollback:
        assert not verified
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_restore, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()


__all__ = ["RpoMeasurement"]
