"""Airflow Metadata Restore, section 3 of the restore procedure, with the real Airflow.

1. baseline: Airflow's own view (DagBag, migration head) and its database's runs and task
   instances, then the backup the restore will use;
2. a DAG run committed after the backup, through the API server, scheduler and a worker
   (lost by the restore: the measured RPO);
3. the incident: a fault injected through the ledgered fixture;
4. detection: the verification checks this fault must break;
5. restore: stop Airflow → download → verify checksum → check the backup's Airflow version
   → safety snapshot → restore → verify DAGs → restart → accessible → a DAG run end to end;
6. verification: every check clean, the API server healthy;
7. objectives: RTO and RPO against the runbook's 15-30 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from drtests.airflow.api import AirflowAPI
from drtests.backups import BackupCatalog
from drtests.errors import NoVerifiedBackup
from drtests.faults import (
    DeleteDagRuns,
    DeleteTaskInstances,
    DowngradeAirflowSchema,
    DropAirflowTable,
    Fault,
    TruncateAirflowTable,
)
from drtests.fixtures.airflow import AirflowUnderTest
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.ledger import utcnow
from drtests.metastore.changes import measure_rpo
from drtests.procedures.airflow import RUNBOOK_AIRFLOW, AirflowRestoreTarget, airflow_restore
from drtests.results import failed

PROCEDURE = "airflow_restore"
#: the run id of the DAG run after the backup (unique: a live Airflow keeps its runs)
AFTER_BACKUP = f"after_backup__{utcnow():%Y%m%dT%H%M%S}"
PREVIOUS_REVISION = "previous"  # placeholder: the installed Airflow's previous migration

FAULTS: list[Fault[Any]] = [
    DeleteDagRuns("daily_etl"),
    DeleteTaskInstances("hourly_ingest"),
    DropAirflowTable("task_instance"),
    TruncateAirflowTable("dag_run"),
    DowngradeAirflowSchema(PREVIOUS_REVISION),
]

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.airflow]


def _half(index: int) -> pytest.MarkDecorator:
    """Airflow's scenarios in two groups of about equal length (restores and controls
    alternating), so that two workers share them: each worker seeds Airflow once."""
    return pytest.mark.xdist_group(f"airflow-{index % 2 + 1}")


def _params(first: int) -> list[object]:
    return [
        pytest.param(fault, id=fault.kind.removeprefix("airflow-"), marks=_half(first + i))
        for i, fault in enumerate(FAULTS)
    ]


def _real(fault: Fault[Any], airflow: AirflowUnderTest) -> Fault[Any]:
    """The schema downgrade goes to the revision before the installed Airflow's head."""
    if isinstance(fault, DowngradeAirflowSchema):
        previous = airflow.deployment.probe().previous_revision
        assert previous, "the installed Airflow has no previous migration"
        return DowngradeAirflowSchema(previous)
    return fault


@pytest.mark.parametrize("fault", _params(0))
def test_airflow_metadata_restore(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    airflow: AirflowUnderTest,
    airflow_services: AirflowRestoreTarget,
    airflow_backups: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = _real(fault, airflow)
    scenario.begin(
        PROCEDURE, "airflow", f"Airflow restore after: {fault.describe()}", RUNBOOK_AIRFLOW
    )

    # 1. Baseline and backup
    scenario.authorize(airflow_backups.target, "write an Airflow backup")
    baseline = airflow.baseline()
    clean = airflow.check_baseline(baseline)
    assert not failed(clean), f"Airflow must be healthy before the fault: {failed(clean)}"
    with scenario.journal.step("Take backup", f"{RUNBOOK_AIRFLOW} · backup") as step:
        backup = airflow_backups.create(airflow.target.endpoint, airflow.target.database)
        step.detail = f"{backup.uri} ({backup.size} bytes)"

    # 2. A DAG run after the backup: what the restore will lose
    after_backup = f"{airflow.after_backup_dag}/{AFTER_BACKUP}"
    state, _ = AirflowAPI(airflow.deployment.api_url).run_dag(
        airflow.after_backup_dag, AFTER_BACKUP, airflow_services.ready_timeout
    )
    assert state == "success"
    changes_before_fault = airflow.changes()

    # 3. The incident
    scenario.incident()
    inject_fault(fault, airflow.target)

    # 4. Detection
    detected = scenario.detected(airflow.check(baseline), fault.detected_by)
    assert set(fault.detected_by) <= detected, (
        f"not detected by {set(fault.detected_by) - detected}"
    )

    # 5. Restore by the runbook
    assert scenario.incident_time is not None
    outcome = airflow_restore(
        airflow_services,
        airflow_backups,
        datetime.fromtimestamp(scenario.incident_time, UTC),
        scenario.journal,
    )
    assert outcome.backup == backup
    scenario.restored(backup.uri)

    # 6. Verification, with the API server running
    scenario.verified(airflow.check(baseline, api=True))

    # 7. Objectives: the run after the backup is lost (and any the scheduler started once
    # the DAG was unpaused)
    changes_after_restore = airflow.changes()
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, changes_after_restore, scenario.incident_time)
    )
    assert after_backup in changes_before_fault.events
    assert after_backup not in changes_after_restore.events
    scenario.assert_objectives_met()


@pytest.mark.negative_control
@pytest.mark.parametrize("fault", _params(1))
def test_airflow_fault_without_restore_fails_verification(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    airflow: AirflowUnderTest,
    inject_fault: InjectFault,
) -> None:
    """Negative control: the fault with the restore skipped must fail verification."""
    fault = _real(fault, airflow)
    scenario.begin(
        PROCEDURE,
        "airflow",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK_AIRFLOW} (skipped)",
        kind="negative-control",
    )
    baseline = airflow.baseline()
    scenario.incident()
    inject_fault(fault, airflow.target)
    # nothing happens between detection and verification: one run of the checks serves both
    results = airflow.check(baseline)
    scenario.detected(results, fault.detected_by)

    verified = scenario.verified(results)

    assert not verified, "verification passed although nothing was restored"
    assert set(fault.detected_by) <= set(scenario.record.detected_by)


@pytest.mark.negative_control
@_half(1)
def test_backup_of_another_airflow_version_is_refused(
    scenario: ScenarioRecorder,
    airflow: AirflowUnderTest,
    airflow_services: AirflowRestoreTarget,
    airflow_backups: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    """Negative control: the only backup was written at another Airflow migration. The
    restore refuses it before anything is replaced, Airflow comes back on the damaged
    database as it was, and verification fails."""
    scenario.begin(
        PROCEDURE,
        "airflow",
        "Restore from a backup of another Airflow version",
        f"{RUNBOOK_AIRFLOW} with an incompatible backup",
        kind="negative-control",
    )
    baseline = airflow.baseline()
    downgrade = _real(DowngradeAirflowSchema(PREVIOUS_REVISION), airflow)
    assert isinstance(downgrade, DowngradeAirflowSchema)
    record = inject_fault(downgrade, airflow.target)
    older = airflow_backups.create(airflow.target.endpoint, airflow.target.database)
    downgrade.revert(airflow.target, {"previous": airflow.deployment.probe().heads[0]})
    scenario.finding(f"backup {older.key} written at migration {downgrade.to_revision}")
    assert record.kind == downgrade.kind

    scenario.incident()
    inject_fault(DeleteDagRuns("daily_etl"), airflow.target)
    damaged = airflow.changes()
    assert scenario.incident_time is not None
    with pytest.raises(NoVerifiedBackup, match="expects"):
        airflow_restore(
            airflow_services,
            airflow_backups,
            datetime.fromtimestamp(scenario.incident_time, UTC),
            scenario.journal,
        )
    scenario.finding("restore refused: the backup's Airflow migration is not the installed one")

    assert airflow.changes() == damaged, "a refused restore changed data"
    assert not scenario.verified(airflow.check(baseline, api=True))
