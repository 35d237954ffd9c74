"""Choosing the backup a restore puts in place. Each candidate, newest first, is downloaded,
checked against its checksums, restored into a staging database and identified there as a
database of the component being restored; any failure rejects that backup, with its reason,
and the next older one is tried. Only a staged and identified copy is ever swapped in; when
every candidate is rejected, nothing was changed.

A checksum proves the bytes are the ones written, not that they are a backup of the right
thing: a dump of another database, or a damaged one with recomputed checksums, passes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from drtests.backups import BackupCatalog, BackupRecord
from drtests.errors import (
    ChecksumMismatch,
    CorruptBackup,
    IncompatibleBackup,
    NoVerifiedBackup,
    RestoreFailed,
    RestoreInterrupted,
)
from drtests.killpoints import kill_point
from drtests.postgres import (
    check_dump_readable,
    connect,
    drop_database,
    restore_into_new_database,
    swap_in,
)
from drtests.procedures.database import (
    DumpTarget,
    RestoreOutcome,
    ServiceDatabase,
    check_target_ready,
    stop_workloads,
)
from drtests.procedures.journal import RUNBOOK_RESTORE, Journal

#: reads the staged database and says what it is; raises IncompatibleBackup when it is not
#: a database of the component being restored
Identify = Callable[[psycopg.Connection[Any]], str]

REJECTED = (ChecksumMismatch, CorruptBackup, IncompatibleBackup, RestoreFailed)


@dataclass(frozen=True)
class StagedBackup:
    record: BackupRecord
    #: the staging database holding the restored backup
    database: str
    identity: str


def staging_name(database: str) -> str:
    return f"{database}__restoring"


def stage_first_good(
    target: DumpTarget,
    catalog: BackupCatalog,
    candidates: list[BackupRecord],
    journal: Journal,
    outcome: RestoreOutcome,
    identify: Identify,
    *,
    component: str,
    runbook_step: str,
    backup_of: str | None = None,
) -> StagedBackup:
    """The newest candidate that downloads intact, restores and is what it claims to be,
    restored into ``<database>__restoring``. Escalates (:class:`NoVerifiedBackup`, naming
    each rejected backup and why) when none is left. ``backup_of`` names the database the
    backups must be of, when it is not the target's own (a restore somewhere else)."""
    for record in candidates:
        try:
            staged = _stage(
                target,
                catalog,
                record,
                journal,
                identify,
                component,
                runbook_step,
                backup_of or target.database,
            )
        except RestoreInterrupted:
            raise
        except REJECTED as exc:
            outcome.rejected.append(f"{record.key}: {exc}")
            continue
        outcome.backup = record
        return staged
    raise NoVerifiedBackup(
        f"every backup before the incident was rejected ({len(candidates)}: "
        f"{'; '.join(outcome.rejected)}); nothing was changed — escalate to Level 4: "
        "Database Team (#db-team-oncall)"
    )


def _stage(
    target: DumpTarget,
    catalog: BackupCatalog,
    record: BackupRecord,
    journal: Journal,
    identify: Identify,
    component: str,
    runbook_step: str,
    backup_of: str,
) -> StagedBackup:
    staging = staging_name(target.database)
    with journal.step("Check backup metadata", runbook_step) as s:
        s.detail = _check_metadata(catalog, record, backup_of)
    local = _download_verified(target, catalog, record, journal, runbook_step)
    staged = False
    try:
        with journal.step("Restore backup into staging database", runbook_step) as s:
            journal.creating_database(target.pg, target.database, staging, component)
            drop_database(target.pg, staging)  # a leftover of an interrupted restore
            restore_into_new_database(target.pg, staging, local)
            s.detail = f"{record.key} restored into {staging}"
        step = journal.step("Identify staged backup", runbook_step)
        with step as s, connect(target.pg, staging) as conn:
            s.detail = identity = identify(conn)
        staged = True
        return StagedBackup(record, staging, identity)
    finally:
        local.unlink(missing_ok=True)
        if not staged:
            drop_database(target.pg, staging)
            journal.database_gone(staging)


def _download_verified(
    target: DumpTarget,
    catalog: BackupCatalog,
    record: BackupRecord,
    journal: Journal,
    runbook_step: str,
) -> Path:
    """Troubleshooting "Checksum Mismatch": download, verify, and re-download once."""
    problem = ChecksumMismatch(f"{record.key}: not verified")
    for attempt in ("Download backup", "Re-download backup"):
        with journal.step(attempt, runbook_step) as s:
            local = catalog.download(record, target.workdir)
            s.detail = f"{record.uri}, {record.size} bytes"
        try:
            with journal.step("Verify checksum", runbook_step) as s:
                catalog.verify(record, local)
                entries = check_dump_readable(target.pg, local)
                s.detail = (
                    f"{record.key}: sha256 {record.sha256[:16]}… and md5 match; "
                    f"{entries} archive entries"
                )
            return local
        except CorruptBackup:
            local.unlink(missing_ok=True)
            raise  # the bytes are the ones recorded: another download changes nothing
        except ChecksumMismatch as exc:
            local.unlink(missing_ok=True)
            problem = exc
    raise problem


def _check_metadata(catalog: BackupCatalog, record: BackupRecord, database: str) -> str:
    """What the backup says of itself: taken of this component and of this database."""
    if record.component and record.component != catalog.name:
        raise IncompatibleBackup(
            f"{record.key} is a backup of {record.component}, not of {catalog.name}"
        )
    if record.database and record.database != database:
        raise IncompatibleBackup(
            f"{record.key} is a backup of database {record.database!r}, not of {database!r}"
        )
    return (
        f"{record.component or catalog.name} backup of {record.database or '(unrecorded)'}, "
        f"taken {record.taken_at:%Y-%m-%d %H:%M:%S} UTC"
    )


def swap_in_staged(
    target: DumpTarget, staged: StagedBackup, journal: Journal, component: str
) -> None:
    """Put the staged copy in place of the live database; the replaced one is dropped."""
    retired = f"{target.database}__retired"
    journal.creating_database(target.pg, target.database, retired, component)
    kill_point("mid-restore")
    swap_in(target.pg, target.database, staged.database)
    journal.database_gone(staged.database)
    journal.database_gone(retired)


def drop_staged(target: DumpTarget, staged: StagedBackup | None, journal: Journal) -> None:
    """A staged copy that was not swapped in (the procedure failed after staging)."""
    if staged is None:
        return
    drop_database(target.pg, staged.database)
    journal.database_gone(staged.database)


def stop_and_stage_backup(
    target: ServiceDatabase,
    catalog: BackupCatalog,
    incident_time: datetime,
    journal: Journal,
    outcome: RestoreOutcome,
    *,
    application: str,
    component: str,
    runbook: str,
    identify: Callable[[], Identify],
    ready_detail: Callable[[], str] | None = None,
) -> StagedBackup:
    """The opening of §3 and §4: target ready → stop the application → identify the last
    good backup → download, verify, stage and identify it. ``identify`` is called once the
    target was checked (it may need what that check learnt)."""
    with journal.step(
        "Check restore target ready", f"{RUNBOOK_RESTORE} · Pre-Restore Checklist"
    ) as s:
        s.detail = check_target_ready(target, target.platform, target.services)
        if ready_detail is not None:
            s.detail += f"; {ready_detail()}"
    with journal.step(f"Stop {application}", f"{runbook} step 1") as s:
        stop_workloads(target.platform, target.services, journal, outcome)
        s.detail = f"scaled {', '.join(target.services)} to 0"
    with journal.step("Identify last good backup", f"{runbook} step 2") as s:
        candidates = catalog.candidates_before(incident_time)
        s.detail = f"{len(candidates)} candidates; newest {candidates[0].uri}"
    return stage_first_good(
        target,
        catalog,
        candidates,
        journal,
        outcome,
        identify(),
        component=component,
        runbook_step=f"{runbook} step 2",
    )
