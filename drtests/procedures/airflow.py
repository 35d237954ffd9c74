"""Section 3 of the restore procedure, Airflow Metadata Restore, step by step: stop Airflow,
download and verify the backup, restore, verify DAGs, restart, check it is accessible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drtests.airflow.api import AirflowAPI
from drtests.airflow.deployment import AirflowInstallation, ProbeResult
from drtests.backups import BackupCatalog
from drtests.errors import RestoreFailed
from drtests.ledger import utcnow
from drtests.procedures.database import (
    RestoreOutcome,
    ServiceDatabase,
    restart_service_workloads,
    start_workloads,
    take_safety_snapshot,
)
from drtests.procedures.identity import AIRFLOW_TABLES, alembic_identity
from drtests.procedures.journal import RUNBOOK_RESTORE, Journal
from drtests.procedures.staging import (
    StagedBackup,
    drop_staged,
    stop_and_stage_backup,
    swap_in_staged,
)

RUNBOOK_AIRFLOW = f"{RUNBOOK_RESTORE} · §3 Airflow Metadata Restore"


@dataclass(kw_only=True)
class AirflowRestoreTarget(ServiceDatabase):
    """Airflow's database, its components, and the DAG files it must load."""

    deployment: AirflowInstallation
    dags_source: Path | None = None
    smoke_dag: str | None = None


def airflow_restore(
    target: AirflowRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
) -> RestoreOutcome:
    """Steps 1-5. Airflow is started again whatever happens; a failure before the swap
    (no backup that verifies, stages and is Airflow's at the installed version) leaves the
    database as it was."""
    outcome = RestoreOutcome()
    staged: StagedBackup | None = None
    try:
        installed: list[ProbeResult] = []

        def airflow_installed() -> str:
            installed.append(target.deployment.probe())
            return f"Airflow {installed[0].version} at migration {', '.join(installed[0].heads)}"

        staged = stop_and_stage_backup(
            target,
            catalog,
            incident_time,
            journal,
            outcome,
            application="Airflow",
            component="airflow",
            runbook=RUNBOOK_AIRFLOW,
            identify=lambda: alembic_identity("Airflow", AIRFLOW_TABLES, installed[0].heads),
            ready_detail=airflow_installed,
        )
        with journal.step("Take safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Procedure") as s:
            outcome.safety_snapshot = take_safety_snapshot(target)
            s.detail = f"database {outcome.safety_snapshot}"
        with journal.step("Restore database", f"{RUNBOOK_AIRFLOW} step 3") as s:
            journal.status("database", target.database, False)
            swap_in_staged(target, staged, journal, "airflow")
            journal.status("database", target.database, True)
            s.detail = f"{target.database} replaced from {staged.record.key} ({staged.identity})"
            staged = None
        if target.deployment.runs_in is not None:
            # the runbook execs into the scheduler it scaled to 0 in step 1: it is started
            # first (on the restored database) so that its pod can be asked
            with journal.step(
                "Start the scheduler to verify DAGs in its pod", f"{RUNBOOK_AIRFLOW} step 4"
            ) as s:
                s.detail = start_workloads(
                    target.platform,
                    (target.deployment.runs_in,),
                    outcome.remembered_replicas,
                    target.ready_timeout,
                    journal,
                    after_failure=False,
                )
        with journal.step("Verify DAGs", f"{RUNBOOK_AIRFLOW} step 4") as s:
            s.detail = _verify_dags(target)
    except BaseException:
        drop_staged(target, staged, journal)
        with journal.step("Restart Airflow", f"{RUNBOOK_AIRFLOW} step 5") as s:
            s.detail = restart_service_workloads(target, outcome, journal, after_failure=True)
        raise
    with journal.step("Restart Airflow", f"{RUNBOOK_AIRFLOW} step 5") as s:
        s.detail = restart_service_workloads(target, outcome, journal, after_failure=False)
    with journal.step("Verify Airflow is accessible", f"{RUNBOOK_AIRFLOW} step 5") as s:
        api = AirflowAPI(target.deployment.api_url, patience=target.ready_timeout)
        unhealthy = api.unhealthy()
        if unhealthy:
            raise RestoreFailed(f"Airflow reports unhealthy components: {unhealthy}")
        s.detail = f"API server healthy; {len(api.dag_ids())} DAGs listed"
    if target.smoke_dag:
        with journal.step(
            "Run a DAG end to end", f"{RUNBOOK_RESTORE} · Post-Restore Validation"
        ) as s:
            run_id = f"dr_restore_check__{utcnow():%Y%m%dT%H%M%S}"
            state, seconds = api.run_dag(target.smoke_dag, run_id, target.ready_timeout)
            if state != "success":
                raise RestoreFailed(f"DAG run {target.smoke_dag}/{run_id} ended {state}")
            s.detail = f"{target.smoke_dag}/{run_id} {state} in {seconds:.1f}s"
    return outcome


def _verify_dags(target: AirflowRestoreTarget) -> str:
    """Sync the DAG files, then load them as the runbook does (``DagBag()``)."""
    copied = target.deployment.sync_dags(target.dags_source) if target.dags_source else []
    probe = target.deployment.probe()
    if probe.import_errors:
        first = next(iter(probe.import_errors.items()))
        raise RestoreFailed(
            f"{len(probe.import_errors)} DAG files fail to import; first {first[0]}: "
            f"{first[1].strip().splitlines()[-1]}"
        )
    synced = f"; synced {', '.join(copied)}" if copied else "; DAG files already in sync"
    return f"DagBag(): {len(probe.dag_ids)} DAGs loaded, no import errors{synced}"
