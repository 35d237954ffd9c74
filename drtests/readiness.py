"""DR readiness: the runbooks' prevention measures exist and work. Backups are fresh enough
for the RPO and the newest passes checksum verification; the scheduled backup and
consistency-check jobs exist and their last runs succeeded and were clean; the alert rules
are loaded. Used by ``drtests doctor`` and the readiness scenarios.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from drtests.backups import BackupCatalog
from drtests.errors import DRError
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.platform import JobRun, Platform
from drtests.postgres import PostgresEndpoint, check_dump_readable
from drtests.results import CheckResult, Finding

REQUIRED_ALERTS = ("HiveMetastoreDown", "HiveMetastoreHighErrorRate")
BACKUP_JOB = "hive-metastore-backup"
CONSISTENCY_JOB = "hive-metastore-consistency-check"


def _fail(result: CheckResult, subject: str, detail: str) -> CheckResult:
    result.findings.append(Finding(result.name, "error", subject, detail))
    return result


def backups_ready(
    catalog: BackupCatalog, pg: PostgresEndpoint, max_age: timedelta, now: datetime
) -> list[CheckResult]:
    """The newest backup is younger than the RPO objective, and it downloads, matches its
    checksums and its archive is readable. The catalog is listed once for both."""
    fresh = CheckResult("backup_fresh", f"newest backup younger than {max_age}")
    verifies = CheckResult("newest_backup_verifies", "newest backup passes checksum verification")
    try:
        records = catalog.records()
    except DRError as exc:
        fresh.error = verifies.error = f"cannot run: {exc}"
        return [fresh, verifies]
    if not records:
        _fail(fresh, catalog.target, "no backup at all")
        _fail(verifies, catalog.target, "no backup to verify")
        return [fresh, verifies]
    newest = records[0]
    age = now - newest.taken_at
    if age > max_age:
        _fail(fresh, newest.uri, f"{age} old, RPO allows {max_age}")
    try:
        with tempfile.TemporaryDirectory(prefix="drtests-verify-") as tmp:
            local = catalog.download(newest, Path(tmp))
            catalog.verify(newest, local)
            check_dump_readable(pg, local)
    except DRError as exc:
        _fail(verifies, newest.uri, str(exc))
    return [fresh, verifies]


def job_healthy(
    name: str, last_run: JobRun | None, max_age: timedelta, now: datetime, exists: bool = True
) -> CheckResult:
    """A scheduled job exists and its last run succeeded within ``max_age``."""
    result = CheckResult(f"job_{name}", f"{name} exists, last run succeeded within {max_age}")
    if not exists:
        return _fail(result, name, "job does not exist")
    if last_run is None:
        return _fail(result, name, "never ran")
    if not last_run.succeeded:
        return _fail(result, name, f"last run failed: {last_run.detail}")
    age = now - last_run.started_at
    if age > max_age:
        return _fail(result, name, f"last successful run {age} ago")
    return result


def jobs_healthy(
    platform: Platform,
    max_age: timedelta,
    now: datetime,
    names: tuple[str, ...] = (BACKUP_JOB, CONSISTENCY_JOB),
) -> list[CheckResult]:
    """The runbook's scheduled jobs on the platform (CronJobs on Kubernetes)."""
    results = []
    for name in names:
        try:
            exists = platform.job_exists(name)
            last = platform.last_job_run(name) if exists else None
        except DRError as exc:
            failed = CheckResult(f"job_{name}", f"scheduled job {name}")
            failed.error = f"cannot run: {exc}"
            results.append(failed)
            continue
        results.append(job_healthy(name, last, max_age, now, exists))
    return results


def alert_rules_loaded(
    api: PrometheusAPI, required: Iterable[str] = REQUIRED_ALERTS
) -> CheckResult:
    """The runbook's alert rules are loaded in Prometheus."""
    result = CheckResult("alert_rules_loaded", "HiveMetastoreDown and HighErrorRate rules loaded")
    try:
        loaded = api.rule_names()
    except DRError as exc:
        result.error = f"cannot run: {exc}"
        return result
    for name in required:
        if name not in loaded:
            _fail(result, name, "alert rule not loaded")
    return result
