"""Hive Metastore — Option 1, Full Restore from Backup.

Runbook 002 (Hive Metastore Restore), Remediation Option 1, with the restore procedure's
section 1 (000) for the download and checksum steps:

1. baseline: fingerprint the metastore and take the backup the restore will use;
2. changes committed after the backup (lost by the restore: the measured RPO);
3. the incident: a fault injected through the ledgered fixture;
4. detection: the runbook's detection queries, corrected, must report it;
5. restore: stop dependants → scale down metastore → download → verify checksum →
   safety snapshot → restore → scale up, wait ready → restart dependants;
6. verification: every check clean, S3 consistent, fingerprints equal the baseline;
7. objectives: RTO and RPO against the profile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from drtests.backups import BackupCatalog
from drtests.errors import ChecksumMismatch
from drtests.faults import (
    BlankStorageLocations,
    DeleteDatabaseTables,
    DropMetastoreSchema,
    Fault,
    OrphanPartitions,
    SequenceBehind,
)
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.procedures import RUNBOOK_HMS, MetastoreRestoreTarget, hms_full_restore
from drtests.results import failed

PROCEDURE = "hms_full_restore"
PRE_RESTORE_CHECKLIST = "000 Restore Procedure · Pre-Restore Checklist"
CHANGES_AFTER_BACKUP = 3

FAULTS: list[Fault[Any]] = [
    DeleteDatabaseTables("production_critical"),
    BlankStorageLocations("production_critical", "fact_table"),
    OrphanPartitions("analytics", "fact_table"),
    SequenceBehind("MPartition", "PARTITIONS", "PART_ID"),
    DropMetastoreSchema(),
]

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]


def _ids(fault: Fault[Any]) -> str:
    return fault.kind


@pytest.mark.parametrize("fault", FAULTS, ids=_ids)
def test_full_restore_from_backup(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    scenario.begin(
        PROCEDURE,
        "metastore",
        f"Full restore after: {fault.describe()}",
        f"{RUNBOOK_HMS} · Remediation Option 1",
    )

    # 1. Baseline and backup
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    with scenario.journal.step("Check restore target ready", PRE_RESTORE_CHECKLIST) as step:
        clean = metastore.detect(metastore.baseline())
        assert not failed(clean), f"the metastore must be clean before the fault: {failed(clean)}"
        for service in (metastore_services.metastore_service, *metastore_services.dependents):
            metastore_services.platform.wait_ready(service, metastore_services.ready_timeout)
        step.detail = f"{len(clean)} checks clean; services ready"
    metastore.commit_changes(1)  # the steady workload: the last change the backup will hold
    with scenario.journal.step("Take backup", f"{RUNBOOK_HMS} · Prevention 1") as step:
        baseline = metastore.baseline()
        backup = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
        step.detail = f"{backup.uri} ({backup.size} bytes)"

    # 2. Work committed after the backup: what the restore will lose
    metastore.commit_changes(CHANGES_AFTER_BACKUP)
    changes_before_fault = metastore.change_log()

    # 3. The incident
    scenario.incident()
    inject_fault(fault)

    # 4. Detection must fire, with the checks this fault is known to break
    detected = scenario.detected(metastore.detect(baseline), fault.detected_by)
    assert set(fault.detected_by) <= detected, (
        f"not detected by {set(fault.detected_by) - detected}"
    )

    # 5. Restore by the runbook
    assert scenario.incident_time is not None
    outcome = hms_full_restore(
        metastore_services,
        backup_catalog,
        datetime.fromtimestamp(scenario.incident_time, UTC),
        scenario.journal,
    )
    assert outcome.backup == backup
    scenario.restored(backup.uri)

    # 6. Verification
    scenario.verified(metastore.verify(baseline))

    # 7. Objectives
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    assert scenario.record.rpo is not None and scenario.record.rpo.detail.startswith(
        f"{CHANGES_AFTER_BACKUP} committed changes lost"
    )
    scenario.assert_objectives_met()


@pytest.mark.negative_control
@pytest.mark.parametrize("fault", FAULTS, ids=_ids)
def test_without_restore_verification_fails(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    inject_fault: InjectFault,
) -> None:
    """Negative control: the fault with the restore skipped must fail verification."""
    scenario.begin(
        PROCEDURE,
        "metastore",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK_HMS} · Remediation Option 1 (skipped)",
        kind="negative-control",
    )
    baseline = metastore.baseline()
    scenario.incident()
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)

    verified = scenario.verified(metastore.verify(baseline))

    assert not verified, "verification passed although nothing was restored"
    assert set(fault.detected_by) <= set(scenario.record.detected_by)


@pytest.mark.negative_control
def test_corrupted_backup_stops_restore_and_verification_fails(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    """Negative control: a backup corrupted in storage is refused at the checksum step, the
    damaged metastore is left exactly as it was, and verification fails."""
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Full restore from a corrupted backup",
        f"{RUNBOOK_HMS} · Remediation Option 1 with a sabotaged backup",
        kind="negative-control",
    )
    baseline = metastore.baseline()
    backup = sabotage_catalog.create(metastore.target.endpoint, metastore.target.database)
    body = sabotage_catalog.client.get_object(Bucket=backup.bucket, Key=backup.key)["Body"].read()
    corrupted = (
        body[: len(body) // 2]
        + bytes(b ^ 0xFF for b in body[len(body) // 2 :][:64])
        + body[len(body) // 2 + 64 :]
    )
    sabotage_catalog.client.put_object(
        Bucket=backup.bucket,
        Key=backup.key,
        Body=corrupted,
        Metadata={"sha256": backup.sha256, "md5checksum": backup.md5},
    )
    scenario.incident()
    inject_fault(fault)
    assert set(fault.detected_by) <= scenario.detected(
        metastore.detect(baseline), fault.detected_by
    )
    damaged = metastore.baseline()
    assert scenario.incident_time is not None
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        hms_full_restore(
            metastore_services,
            sabotage_catalog,
            datetime.fromtimestamp(scenario.incident_time, UTC),
            scenario.journal,
        )
    scenario.finding("restore refused: backup checksum mismatch")

    assert metastore.baseline().fingerprints == damaged.fingerprints, (
        "a refused restore changed data"
    )
    assert not scenario.verified(metastore.verify(baseline))
