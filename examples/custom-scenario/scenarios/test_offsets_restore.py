"""Offsets store restore: a topic's offsets rewound by a bad reset, restored from the last
backup. The control: the same fault without the restore must fail verification."""

from __future__ import annotations

import pytest
from offsets_dr import store
from offsets_dr.checks import offsets_match
from offsets_dr.faults import RewindOffsets
from offsets_dr.procedure import RUNBOOK, restore_offsets

from drtests.api import BackupCatalog, DatabaseTarget, InjectFault, RpoMeasurement, ScenarioRecorder

PROCEDURE = "offsets_restore"
pytestmark = [pytest.mark.gameday, pytest.mark.destructive]


def test_offsets_restore_after_a_rewind(
    scenario: ScenarioRecorder,
    offsets: DatabaseTarget,
    offsets_backups: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = RewindOffsets("clickstream")
    scenario.begin(PROCEDURE, "offsets", f"Offsets restore after: {fault.describe()}", RUNBOOK)

    # 1. Baseline and backup
    scenario.authorize(offsets_backups.target, "write an offsets backup")
    with offsets.connect() as conn:
        baseline = store.read(conn)
    with scenario.journal.step("Take backup", f"{RUNBOOK} · backup") as step:
        backup = offsets_backups.create(offsets.endpoint, offsets.database)
        step.detail = backup.uri

    # 2. The job commits after the backup: what the restore will lose
    with offsets.connect() as conn:
        lost = store.commit(conn, "orders", 50)

    # 3. The incident
    scenario.incident()
    inject_fault(fault, offsets)

    # 4. Detection
    detected = scenario.detected([offsets_match(offsets, baseline)], fault.detected_by)
    assert set(fault.detected_by) <= detected

    # 5. Restore by the runbook
    record = restore_offsets(offsets, offsets_backups, scenario.incident_at, scenario.journal)
    assert record == backup
    scenario.restored(backup.uri)

    # 6. Verification: the offsets as they were at the backup
    scenario.verified([offsets_match(offsets, baseline)])

    # 7. Objectives: the commits after the backup are lost
    assert scenario.incident_time is not None
    age = scenario.incident_time - backup.taken_at.timestamp()
    scenario.measured_rpo(RpoMeasurement(lost, None, max(age, 0.0)))
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_offsets_rewind_without_restore_fails_verification(
    scenario: ScenarioRecorder, offsets: DatabaseTarget, inject_fault: InjectFault
) -> None:
    fault = RewindOffsets("clickstream")
    scenario.begin(
        PROCEDURE,
        "offsets",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK} (skipped)",
        kind="negative-control",
    )
    with offsets.connect() as conn:
        baseline = store.read(conn)
    scenario.incident()
    inject_fault(fault, offsets)
    results = [offsets_match(offsets, baseline)]
    scenario.detected(results, fault.detected_by)
    assert not scenario.verified(results), "verification passed although nothing was restored"
