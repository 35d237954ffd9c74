"""DR readiness (runbook 002, Prevention): the daily backup and consistency-check jobs exist
and their last runs succeeded and were clean, the newest backup is younger than the RPO and
passes checksum verification, and the alert rules are loaded. Each control breaks one
measure and readiness must fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drtests.backups import BackupCatalog
from drtests.faults import OrphanPartitions
from drtests.fixtures.environment import require_local_platform
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.monitoring.stack import LocalMonitoring
from drtests.platform.local import LocalPlatform
from drtests.plugin import DRSession
from drtests.procedures import RUNBOOK_HMS, MetastoreRestoreTarget
from drtests.readiness import (
    BACKUP_JOB,
    CONSISTENCY_JOB,
    alert_rules_loaded,
    backups_ready,
    jobs_healthy,
)
from drtests.results import CheckResult, RpoMeasurement, failed

pytestmark = [pytest.mark.gameday, pytest.mark.readiness, pytest.mark.monitoring]
PREVENTION = f"{RUNBOOK_HMS} · Prevention 1-4"
LIVE_READINESS = (
    "readiness runs the scheduled jobs on the platform this run starts; on a live platform "
    "`drtests doctor` checks the backup and consistency CronJobs, backups and alert rules"
)


def _schedule_jobs(
    platform: LocalPlatform,
    metastore: MetastoreUnderTest,
    catalog: BackupCatalog,
    with_backup_job: bool = True,
) -> None:
    """The runbook's two CronJobs, as jobs of the local platform."""

    def backup() -> str:
        return catalog.create(metastore.target.endpoint, metastore.target.database).uri

    def consistency_check() -> str:
        results = metastore.detect(metastore.baseline())
        if failed(results):
            raise RuntimeError(f"checks failing: {', '.join(failed(results))}")
        return f"{len(results)} checks clean"

    if with_backup_job:
        platform.add_job(BACKUP_JOB, backup)
    platform.add_job(CONSISTENCY_JOB, consistency_check)


def _readiness(
    dr: DRSession,
    platform: LocalPlatform,
    catalog: BackupCatalog,
    metastore: MetastoreUnderTest,
    monitoring: LocalMonitoring,
    now: datetime,
) -> list[CheckResult]:
    max_age = timedelta(seconds=dr.profile.objective("hms_full_restore").rpo_seconds)
    return [
        *backups_ready(catalog, metastore.target.endpoint, max_age, now),
        *jobs_healthy(platform, max_age, now),
        alert_rules_loaded(monitoring.api),
    ]


def _begin(scenario: ScenarioRecorder, title: str, control: bool) -> None:
    scenario.begin(
        "dr_readiness",
        "metastore",
        title,
        PREVENTION,
        kind="negative-control" if control else "scenario",
    )


@pytest.mark.destructive
def test_prevention_measures_in_place(
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    monitoring: LocalMonitoring,
) -> None:
    platform = require_local_platform(metastore_services.platform, LIVE_READINESS)
    _begin(scenario, "Prevention measures in place", control=False)
    scenario.authorize(backup_catalog.target, "run the daily backup job")
    _schedule_jobs(platform, metastore, backup_catalog)
    with scenario.journal.step("Run scheduled jobs", PREVENTION) as step:
        runs = [platform.run_job(BACKUP_JOB), platform.run_job(CONSISTENCY_JOB)]
        step.detail = "; ".join(r.detail for r in runs)
    now = datetime.now(UTC)
    results = _readiness(dr, platform, backup_catalog, metastore, monitoring, now)
    assert scenario.verified(results), failed(results)
    newest = backup_catalog.records()[0]
    scenario.measured_rpo(RpoMeasurement(0, None, (now - newest.taken_at).total_seconds()))
    assert scenario.record.rpo is not None and scenario.record.rpo.met


@pytest.mark.destructive
@pytest.mark.negative_control
@pytest.mark.parametrize(
    "broken", ["stale-backup", "corrupt-backup", "dirty-consistency-check", "no-backup-job"]
)
def test_readiness_fails_when_a_measure_is_broken(
    broken: str,
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    monitoring: LocalMonitoring,
    inject_fault: InjectFault,
) -> None:
    platform = require_local_platform(metastore_services.platform, LIVE_READINESS)
    _begin(scenario, f"Readiness with {broken}", control=True)
    scenario.authorize(backup_catalog.target, "run the daily backup job")
    _schedule_jobs(platform, metastore, backup_catalog, with_backup_job=broken != "no-backup-job")
    if broken != "no-backup-job":
        platform.run_job(BACKUP_JOB)
    else:  # a backup someone took by hand; nothing takes the next one
        backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    if broken == "dirty-consistency-check":
        inject_fault(OrphanPartitions("analytics", "fact_table"))
    platform.run_job(CONSISTENCY_JOB)
    if broken == "corrupt-backup":
        newest = backup_catalog.records()[0]
        backup_catalog.client.put_object(
            Bucket=newest.bucket,
            Key=newest.key,
            Body=b"\0" * newest.size,
            Metadata={"sha256": newest.sha256, "md5checksum": newest.md5},
        )
    rpo = timedelta(seconds=dr.profile.objective("hms_full_restore").rpo_seconds)
    # a stale backup: readiness judged as it would be once the RPO has passed
    now = datetime.now(UTC) + (
        rpo + timedelta(minutes=1) if broken == "stale-backup" else timedelta()
    )
    results = _readiness(dr, platform, backup_catalog, metastore, monitoring, now)
    expected = {
        "stale-backup": {"backup_fresh", f"job_{BACKUP_JOB}", f"job_{CONSISTENCY_JOB}"},
        "corrupt-backup": {"newest_backup_verifies"},
        "dirty-consistency-check": {f"job_{CONSISTENCY_JOB}"},
        "no-backup-job": {f"job_{BACKUP_JOB}"},
    }[broken]
    assert set(failed(results)) == expected
    assert not scenario.verified(results)


@pytest.mark.destructive
@pytest.mark.negative_control
@pytest.mark.exclude_alerts("HiveMetastoreHighErrorRate")
def test_readiness_fails_without_the_error_rate_alert(
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    monitoring: LocalMonitoring,
) -> None:
    _begin(scenario, "Readiness without the HiveMetastoreHighErrorRate rule", control=True)
    result = alert_rules_loaded(monitoring.api)
    assert [f.subject for f in result.findings] == ["HiveMetastoreHighErrorRate"]
    assert not scenario.verified([result])
