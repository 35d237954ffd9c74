"""Section 4 of the restore procedure, MLflow Restore: stop the server, restore the backend
store, verify the artifact store, restart and check the server answers. Artifacts deleted
from S3 come back through the S3 machinery (section 2, Option A) under the artifact root."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from drtests.backups import BackupCatalog
from drtests.errors import RestoreFailed
from drtests.http import request_json
from drtests.objectstore import S3_ERRORS, iter_objects
from drtests.objectstore.replication import Location
from drtests.objectstore.versions import VersionRestoreReport
from drtests.procedures.database import (
    RestoreOutcome,
    ServiceDatabase,
    restart_service_workloads,
    take_safety_snapshot,
)
from drtests.procedures.identity import MLFLOW_TABLES, alembic_identity, mlflow_heads
from drtests.procedures.journal import RUNBOOK_RESTORE, Journal
from drtests.procedures.objectstore import version_restore
from drtests.procedures.staging import (
    StagedBackup,
    drop_staged,
    stop_and_stage_backup,
    swap_in_staged,
)

RUNBOOK_MLFLOW = f"{RUNBOOK_RESTORE} · §4 MLflow Restore"


@dataclass(kw_only=True)
class MlflowRestoreTarget(ServiceDatabase):
    """MLflow's backend store, its server and its artifact root."""

    tracking_url: str
    artifacts: Location


def mlflow_restore(
    target: MlflowRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
) -> RestoreOutcome:
    """Steps 1-4. The server is started again whatever happens."""
    outcome = RestoreOutcome()
    staged: StagedBackup | None = None
    try:
        staged = stop_and_stage_backup(
            target,
            catalog,
            incident_time,
            journal,
            outcome,
            application="MLflow",
            component="mlflow",
            runbook=RUNBOOK_MLFLOW,
            # MLflow creates its Default experiment (id 0) with the schema
            identify=lambda: alembic_identity(
                "MLflow", MLFLOW_TABLES, mlflow_heads(target.pg, target.database), "experiments"
            ),
        )
        with journal.step("Take safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Procedure") as s:
            outcome.safety_snapshot = take_safety_snapshot(target)
            s.detail = f"database {outcome.safety_snapshot}"
        with journal.step("Restore backend store", f"{RUNBOOK_MLFLOW} step 2") as s:
            journal.status("database", target.database, False)
            swap_in_staged(target, staged, journal, "mlflow")
            journal.status("database", target.database, True)
            s.detail = f"{target.database} replaced from {staged.record.key} ({staged.identity})"
            staged = None
        with journal.step("Verify artifact store access", f"{RUNBOOK_MLFLOW} step 3") as s:
            s.detail = artifact_store_access(target.artifacts)
    except BaseException:
        drop_staged(target, staged, journal)
        with journal.step("Restart MLflow", f"{RUNBOOK_MLFLOW} step 4") as s:
            s.detail = restart_service_workloads(target, outcome, journal, after_failure=True)
        raise
    with journal.step("Restart MLflow", f"{RUNBOOK_MLFLOW} step 4") as s:
        s.detail = restart_service_workloads(target, outcome, journal, after_failure=False)
    with journal.step("Test MLflow API", f"{RUNBOOK_MLFLOW} step 3") as s:
        s.detail = server_answers(target.tracking_url, target.ready_timeout)
    return outcome


def artifact_store_access(artifacts: Location) -> str:
    """The runbook's ``ls /mlflow/artifacts/``: the artifact root lists."""
    try:
        count = sum(
            1 for _ in iter_objects(artifacts.endpoint.client(), artifacts.bucket, artifacts.prefix)
        )
    except S3_ERRORS as exc:
        raise RestoreFailed(f"artifact store {artifacts.uri} not accessible: {exc}") from None
    return f"{artifacts.uri}: {count} objects"


def server_answers(url: str, patience: float = 60.0, timeout: float = 10.0) -> str:
    """The runbook's "Test MLflow UI": the server answers its search API (a read, so a
    request that timed out is sent again within ``patience``)."""
    found = request_json(
        "POST",
        f"{url}/api/2.0/mlflow/experiments/search",
        {"max_results": 1000},
        what="MLflow experiments search",
        timeout=timeout,
        retry_until=time.monotonic() + patience,
    )
    return f"{url}: {len(found.get('experiments', []))} experiments listed"


def mlflow_artifact_restore(
    artifacts: Location, as_of: datetime, expected_keys: list[str], journal: Journal
) -> VersionRestoreReport:
    """Artifacts deleted under the artifact root: their versions as of before the incident
    (section 2, Option A); the server serves them again without a restart."""
    report = version_restore(artifacts, as_of, expected_keys, journal)
    with journal.step("Verify artifact store access", f"{RUNBOOK_MLFLOW} step 3") as s:
        s.detail = artifact_store_access(artifacts)
    return report
