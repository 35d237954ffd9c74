"""Hive Metastore procedures: :func:`hms_full_restore` is the Hive Metastore runbook's
Option 1 with the restore procedure's section 1, step by step; :func:`rollback_from_snapshot`
is the restore procedure's Rollback Procedure."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from drtests.backups import BackupCatalog, BackupRecord
from drtests.errors import (
    RestoreFailed,
)
from drtests.metastore.repair import Mode, msck_repair, repair_consistency
from drtests.platform import Platform
from drtests.postgres import (
    PostgresEndpoint,
    connect,
    swap_in,
)
from drtests.procedures.database import (
    RestoreOutcome,
    check_target_ready,
    start_workloads,
    stop_workloads,
    take_safety_snapshot,
)
from drtests.procedures.identity import metastore_identity, running_metastore_versions
from drtests.procedures.journal import RUNBOOK_HMS, RUNBOOK_RESTORE, Journal
from drtests.procedures.staging import (
    StagedBackup,
    drop_staged,
    stage_first_good,
    swap_in_staged,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class MetastoreRestoreTarget:
    pg: PostgresEndpoint
    database: str
    platform: Platform
    metastore_service: str
    dependents: tuple[str, ...]
    workdir: Path
    ready_timeout: float = 300
    #: the SparkApplications stopped before the restore (the profile's
    #: ``[kubernetes] spark_application_selector``)
    spark_application_selector: str = "environment=production"


def hms_full_restore(
    target: MetastoreRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
) -> RestoreOutcome:
    """Option 1, Full Restore from Backup. Services are started again whatever happens;
    a failure before the swap leaves the database as it was."""
    outcome = RestoreOutcome()
    staged: StagedBackup | None = None
    try:
        with journal.step(
            "Check restore target ready", f"{RUNBOOK_RESTORE} · Pre-Restore Checklist"
        ) as s:
            versions = running_metastore_versions(target.pg, target.database)
            s.detail = f"{_check_target_ready(target)}; schema {' or '.join(versions)}"
        with journal.step("Stop dependent services", f"{RUNBOOK_HMS} · Option 1 step 1") as s:
            deleted = target.platform.delete_spark_applications(target.spark_application_selector)
            stop_workloads(target.platform, target.dependents, journal, outcome)
            s.detail = (
                f"scaled {', '.join(target.dependents)} to 0; {deleted} SparkApplications deleted"
            )
        with journal.step("Scale down metastore", f"{RUNBOOK_HMS} · Option 1 step 2") as s:
            stop_workloads(target.platform, (target.metastore_service,), journal, outcome)
            s.detail = f"{target.metastore_service} scaled to 0"
        staged = _stage_last_good(
            target,
            catalog,
            incident_time,
            journal,
            outcome,
            versions,
            f"{RUNBOOK_RESTORE} · §1 step 2",
        )
        with journal.step("Take safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Procedure") as s:
            outcome.safety_snapshot = take_safety_snapshot(target)
            s.detail = f"database {outcome.safety_snapshot}"
        with journal.step("Restore database", f"{RUNBOOK_HMS} · Option 1 step 3") as s:
            journal.status("database", target.database, False)
            swap_in_staged(target, staged, journal, "metastore")
            journal.status("database", target.database, True)
            s.detail = f"{target.database} replaced from {staged.record.key} ({staged.identity})"
            staged = None
    except BaseException:
        drop_staged(target, staged, journal)
        restart_services(target, outcome.remembered_replicas, journal, after_failure=True)
        raise
    restart_services(target, outcome.remembered_replicas, journal, after_failure=False)
    run_test_job(target, journal)
    return outcome


def _stage_last_good(
    target: MetastoreRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
    outcome: RestoreOutcome,
    versions: tuple[str, ...],
    runbook_step: str,
) -> StagedBackup:
    """Diagnosis step 5, then the newest backup before the incident that stages as a
    metastore at one of ``versions``."""
    with journal.step("Identify last good backup", f"{RUNBOOK_HMS} · Diagnosis step 5") as s:
        candidates = catalog.candidates_before(incident_time)
        s.detail = f"{len(candidates)} candidates; newest {candidates[0].uri}"
    return stage_first_good(
        target,
        catalog,
        candidates,
        journal,
        outcome,
        metastore_identity(versions),
        component="metastore",
        runbook_step=runbook_step,
    )


def run_test_job(target: MetastoreRestoreTarget, journal: Journal) -> None:
    """Post-Restore Validation: "Test job completed successfully" — a job that reads the
    restored metastore and its data, on the platform the workloads run on."""
    with journal.step("Run test job", f"{RUNBOOK_RESTORE} · Post-Restore Validation") as s:
        result = target.platform.run_test_job(target.ready_timeout)
        if result is None:
            s.status = "skipped"
            s.detail = "no test job configured for this platform"
            return
        tail = result.log.strip().splitlines()[-1] if result.log.strip() else ""
        if result.state != "COMPLETED":
            raise RestoreFailed(f"test job {result.name} {result.state}: {tail}")
        s.detail = f"{result.name} {result.state} in {result.seconds:.1f}s: {tail}"


def _check_target_ready(target: MetastoreRestoreTarget) -> str:
    workloads = (target.metastore_service, *target.dependents)
    return check_target_ready(target, target.platform, workloads)


def restart_services(
    target: MetastoreRestoreTarget,
    replicas: dict[str, int],
    journal: Journal,
    *,
    after_failure: bool,
) -> None:
    """Steps 4-6: scale the metastore and its dependants back up. After a failed restore
    they are started again all the same, but readiness is only reported, not awaited for
    the full timeout: a metastore on a still-damaged database will not become ready."""
    for step_name, names, runbook in (
        ("Scale up metastore and wait ready", (target.metastore_service,), "Option 1 steps 4-5"),
        ("Restart dependent services", target.dependents, "Option 1 step 6"),
    ):
        with journal.step(step_name, f"{RUNBOOK_HMS} · {runbook}") as s:
            s.detail = start_workloads(
                target.platform,
                names,
                replicas,
                target.ready_timeout,
                journal,
                after_failure=after_failure,
            )


def rollback_from_snapshot(target: MetastoreRestoreTarget, snapshot: str, journal: Journal) -> None:
    """The runbook's Rollback Procedure, Option 1: back to the state before the restore."""
    with journal.step("Rollback: stop services", f"{RUNBOOK_RESTORE} · Rollback Option 1"):
        for name in (*target.dependents, target.metastore_service):
            target.platform.scale(name, 0)
    try:
        with journal.step(
            "Rollback: restore safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Option 1"
        ):
            swap_in(target.pg, target.database, snapshot)
    finally:
        # the state before the restore may itself be damaged: readiness is reported, not awaited
        restart_services(target, {}, journal, after_failure=True)


def metadata_repair(
    conn: psycopg.Connection[Any],
    s3: S3Client,
    tables: list[tuple[str, str]],
    journal: Journal,
    mode: Mode = "ADD",
) -> list[str]:
    """Option 3, Metadata Repair: the consistency check with --repair, then MSCK REPAIR
    TABLE for each table. Returns what could not be repaired safely."""
    with journal.step("Run consistency check --repair", f"{RUNBOOK_HMS} · Option 3 step 1") as s:
        fixed = repair_consistency(conn)
        s.detail = fixed.describe()
    for database, table in tables:
        with journal.step(
            f"MSCK REPAIR TABLE {database}.{table} {mode} PARTITIONS",
            f"{RUNBOOK_HMS} · Option 3 steps 2-3",
        ) as s:
            s.detail = msck_repair(conn, s3, database, table, mode).describe()
    return fixed.not_repaired


def selective_table_restore(
    target: MetastoreRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    database: str,
    table: str,
    journal: Journal,
) -> BackupRecord:
    """Option 2, first route: the table's metadata from the backup, put in place of what is
    left of it, with fresh ids; every other table untouched. The metastore stays online."""
    from drtests.metastore.tables import insert_table, read_table, remove_table

    outcome = RestoreOutcome()
    damaged_ids: list[int] = []
    step = journal.step("Identify corrupted table", f"{RUNBOOK_HMS} · Option 2 step 1")
    with step as s, connect(target.pg, target.database) as conn:
        try:
            damaged = read_table(conn, database, table)
            damaged_ids.append(damaged.tbl_id)
            s.detail = (
                f"{database}.{table}: {damaged.count('PARTITIONS')} partitions, "
                f"location {damaged.location!r}"
            )
        except LookupError:
            s.detail = f"{database}.{table}: no TBLS row left"
    staged = _stage_last_good(
        target,
        catalog,
        incident_time,
        journal,
        outcome,
        running_metastore_versions(target.pg, target.database),
        f"{RUNBOOK_HMS} · Option 2",
    )
    try:
        with journal.step("Read table metadata from backup", f"{RUNBOOK_HMS} · Option 2") as s:
            with connect(target.pg, staged.database) as conn:
                good = read_table(conn, database, table)
            s.detail = (
                f"{good.count('PARTITIONS')} partitions, {good.count('COLUMNS_V2')} "
                f"columns, {sum(len(v) for v in good.rows.values())} rows"
            )
        with journal.step("Replace table metadata", f"{RUNBOOK_HMS} · Option 2 steps 2-3") as s:
            with connect(target.pg, target.database) as conn, conn.transaction():
                conn.execute("SET CONSTRAINTS ALL DEFERRED")
                known_sds = [sd["SD_ID"] for sd in good.rows["SDS"]]
                removed = remove_table(conn, sorted({good.tbl_id, *damaged_ids}), known_sds)
                new_id = insert_table(conn, good)
            s.detail = (
                f"removed {removed} damaged table row(s); {database}.{table} is TBL_ID {new_id}"
            )
    finally:
        drop_staged(target, staged, journal)
    return staged.record


def recreate_external_table(
    conn: psycopg.Connection[Any],
    s3: S3Client,
    definition: Any,
    location: str,
    journal: Journal,
) -> None:
    """Option 2, second route: drop the table's metadata, create it again as an external
    table at its S3 location, then MSCK REPAIR TABLE brings the partitions back."""
    from drtests.metastore.tables import TABLE_LEVEL, insert_table, remove_table

    database, table = definition.database, definition.name
    step = journal.step("Drop table metadata", f"{RUNBOOK_HMS} · Option 2 step 2")
    with step as s, conn.transaction():
        s.detail = f"removed {remove_table(conn, [definition.tbl_id])} table row(s)"
    with journal.step("Create external table", f"{RUNBOOK_HMS} · Option 2 step 3") as s:
        tbl = definition.rows["TBLS"][0]
        tbl.update({"TBL_TYPE": "EXTERNAL_TABLE", "CREATE_TIME": int(time.time())})
        for sd in definition.rows["SDS"]:
            if sd["SD_ID"] == tbl["SD_ID"]:
                sd["LOCATION"] = location
        params = [
            p for p in definition.rows.get("TABLE_PARAMS", []) if p["PARAM_KEY"] == "EXTERNAL"
        ]
        definition.rows["TABLE_PARAMS"] = params or [
            {"TBL_ID": definition.tbl_id, "PARAM_KEY": "EXTERNAL", "PARAM_VALUE": "TRUE"}
        ]
        table_sds = {tbl["SD_ID"]}
        definition.rows["SDS"] = [sd for sd in definition.rows["SDS"] if sd["SD_ID"] in table_sds]
        serdes = {sd["SERDE_ID"] for sd in definition.rows["SDS"]}
        for name in ("SERDES", "SERDE_PARAMS"):
            definition.rows[name] = [r for r in definition.rows[name] if r["SERDE_ID"] in serdes]
        for name in ("SD_PARAMS", "BUCKETING_COLS", "SORT_COLS"):
            definition.rows[name] = [
                r for r in definition.rows.get(name, []) if r["SD_ID"] in table_sds
            ]
        with conn.transaction():
            new_id = insert_table(conn, definition, only=TABLE_LEVEL)
        s.detail = (
            f"CREATE EXTERNAL TABLE {database}.{table} … LOCATION '{location}' (TBL_ID {new_id})"
        )
    with journal.step(
        f"MSCK REPAIR TABLE {database}.{table}", f"{RUNBOOK_HMS} · Option 2 step 4"
    ) as s:
        s.detail = msck_repair(conn, s3, database, table, "ADD").describe()
