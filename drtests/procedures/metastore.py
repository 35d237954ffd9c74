"""Hive Metastore procedures: :func:`hms_full_restore` is the Hive Metastore runbook's
Option 1 with the restore procedure's section 1, step by step; :func:`rollback_from_snapshot`
is the restore procedure's Rollback Procedure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from drtests.backups import BackupCatalog, BackupRecord
from drtests.ledger import utcnow
from drtests.platform import Platform
from drtests.postgres import (
    PostgresEndpoint,
    check_dump_readable,
    database_exists,
    drop_database,
    dump_database,
    restore_into_new_database,
    swap_databases,
)
from drtests.procedures.journal import RUNBOOK_HMS, RUNBOOK_RESTORE, Journal


@dataclass
class MetastoreRestoreTarget:
    pg: PostgresEndpoint
    database: str
    platform: Platform
    metastore_service: str
    dependents: tuple[str, ...]
    workdir: Path
    ready_timeout: float = 300


@dataclass
class RestoreOutcome:
    backup: BackupRecord | None = None
    safety_snapshot: Path | None = None
    remembered_replicas: dict[str, int] = field(default_factory=dict)


def hms_full_restore(
    target: MetastoreRestoreTarget,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
) -> RestoreOutcome:
    """Option 1, Full Restore from Backup. Services are started again whatever happens;
    a failure before the swap leaves the database as it was."""
    outcome = RestoreOutcome()
    services = (*target.dependents, target.metastore_service)
    try:
        with journal.step("Stop dependent services", f"{RUNBOOK_HMS} · Option 1 step 1") as s:
            deleted = target.platform.delete_spark_applications("environment=production")
            for name in target.dependents:
                outcome.remembered_replicas[name] = target.platform.replicas(name)
                target.platform.scale(name, 0)
            s.detail = (
                f"scaled {', '.join(target.dependents)} to 0; {deleted} SparkApplications deleted"
            )
        with journal.step("Scale down metastore", f"{RUNBOOK_HMS} · Option 1 step 2") as s:
            outcome.remembered_replicas[target.metastore_service] = target.platform.replicas(
                target.metastore_service
            )
            target.platform.scale(target.metastore_service, 0)
            s.detail = f"{target.metastore_service} scaled to 0"
        with journal.step("Identify last good backup", f"{RUNBOOK_HMS} · Diagnosis step 5") as s:
            outcome.backup = catalog.latest_before(incident_time)
            s.detail = outcome.backup.uri
        with journal.step("Download backup", f"{RUNBOOK_RESTORE} · §1 step 2") as s:
            local = catalog.download(outcome.backup, target.workdir)
            s.detail = f"{outcome.backup.size} bytes"
        with journal.step("Verify checksum", f"{RUNBOOK_RESTORE} · §1 step 2") as s:
            catalog.verify(outcome.backup, local)
            check_dump_readable(target.pg, local)
            s.detail = f"sha256 {outcome.backup.sha256[:16]}… and md5 match"
        with journal.step("Take safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Procedure") as s:
            outcome.safety_snapshot = take_safety_snapshot(target)
            s.detail = outcome.safety_snapshot.name
        with journal.step("Restore database", f"{RUNBOOK_HMS} · Option 1 step 3") as s:
            replace_database(target.pg, target.database, local)
            s.detail = f"{target.database} replaced from {outcome.backup.key}"
    finally:
        with journal.step(
            "Scale up metastore and wait ready", f"{RUNBOOK_HMS} · Option 1 steps 4-5"
        ):
            target.platform.scale(
                target.metastore_service,
                outcome.remembered_replicas.get(target.metastore_service, 1),
            )
            target.platform.wait_ready(target.metastore_service, target.ready_timeout)
        with journal.step("Restart dependent services", f"{RUNBOOK_HMS} · Option 1 step 6") as s:
            for name in target.dependents:
                target.platform.scale(name, outcome.remembered_replicas.get(name, 1))
            for name in target.dependents:
                target.platform.wait_ready(name, target.ready_timeout)
            s.detail = f"{len(services)} services ready"
    return outcome


def take_safety_snapshot(target: MetastoreRestoreTarget) -> Path:
    """pg_dump of the database as it is now, so a bad restore can be rolled back."""
    snapshot = target.workdir / f"safety-{target.database}-{utcnow():%Y%m%d-%H%M%S%f}.dump"
    dump_database(target.pg, target.database, snapshot)
    check_dump_readable(target.pg, snapshot)
    return snapshot


def replace_database(pg: PostgresEndpoint, database: str, dump: Path) -> None:
    """Restore into a staging database, then swap it in; the old one is dropped after.

    pg_restore into a fresh database is all-or-nothing: a corrupt dump never touches the
    live database.
    """
    staging, retired = f"{database}__restoring", f"{database}__retired"
    for leftover in (staging, retired):
        if database_exists(pg, leftover):
            drop_database(pg, leftover)
    restore_into_new_database(pg, staging, dump)
    swap_databases(pg, database, staging, retired)
    drop_database(pg, retired)


def rollback_from_snapshot(
    target: MetastoreRestoreTarget, snapshot: Path, journal: Journal
) -> None:
    """The runbook's Rollback Procedure, Option 1: back to the state before the restore."""
    with journal.step("Rollback: stop services", f"{RUNBOOK_RESTORE} · Rollback Option 1"):
        for name in (*target.dependents, target.metastore_service):
            target.platform.scale(name, 0)
    try:
        with journal.step(
            "Rollback: restore safety snapshot", f"{RUNBOOK_RESTORE} · Rollback Option 1"
        ):
            replace_database(target.pg, target.database, snapshot)
    finally:
        with journal.step("Rollback: restart services", f"{RUNBOOK_RESTORE} · Rollback Option 1"):
            for name in (target.metastore_service, *target.dependents):
                target.platform.scale(name, 1)
                target.platform.wait_ready(name, target.ready_timeout)
