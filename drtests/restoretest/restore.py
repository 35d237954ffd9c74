"""A recovery point restored into the scratch server with the real procedure's own steps
(metadata, download, checksum against metadata and manifest, archive TOC, restore into a
new database, identity and schema version), timed; a rejected point is a finding, and the
next older one in the window is tried, as the procedure would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from drtests.backups import BackupCatalog, BackupRecord
from drtests.postgres import PostgresEndpoint
from drtests.procedures.database import RestoreOutcome
from drtests.procedures.journal import Journal
from drtests.procedures.staging import Identify, StagedBackup, drop_staged, stage_first_good
from drtests.restoretest.scratch import ScratchServer

#: how the fault ledger names a scratch database, so that the next run finds its server
LEDGER_COMPONENT = "restore-test-scratch"


@dataclass
class ScratchTarget:
    pg: PostgresEndpoint
    database: str
    workdir: Path


@dataclass
class RestoredCopy:
    record: BackupRecord
    #: the database on the scratch server holding the restored backup
    database: str
    identity: str
    restore_seconds: float
    #: recovery points tried first and rejected, each with its reason
    rejected: list[str] = field(default_factory=list)
    _staged: StagedBackup | None = None
    _target: ScratchTarget | None = None

    def drop(self, journal: Journal) -> None:
        if self._target is not None:
            drop_staged(self._target, self._staged, journal)
            self._staged = None


def restore_to_scratch(
    catalog: BackupCatalog,
    points: list[BackupRecord],
    scratch: ScratchServer,
    component: str,
    identify: Identify,
    journal: Journal,
    workdir: Path,
    runbook_step: str,
    source_database: str,
) -> RestoredCopy:
    """The first of ``points`` that downloads intact, restores and is what it claims,
    restored on the scratch server. Raises :class:`NoVerifiedBackup` when none is."""
    target = ScratchTarget(scratch.endpoint, scratch.database_for(component), workdir)
    outcome = RestoreOutcome()
    started = time.monotonic()
    staged = stage_first_good(
        target,
        catalog,
        points,
        journal,
        outcome,
        identify,
        component=LEDGER_COMPONENT,
        runbook_step=runbook_step,
        backup_of=source_database,
    )
    return RestoredCopy(
        staged.record,
        staged.database,
        staged.identity,
        round(time.monotonic() - started, 3),
        outcome.rejected,
        staged,
        target,
    )
