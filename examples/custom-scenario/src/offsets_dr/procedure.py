"""The offsets store's restore, as its runbook says: find the last backup before the
incident, download and verify it, restore it, each a timed step of the journal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from drtests.api import BackupCatalog, BackupRecord, DatabaseTarget, Journal, replace_database

RUNBOOK = "Offsets store restore"


def restore_offsets(
    target: DatabaseTarget, catalog: BackupCatalog, incident: datetime, journal: Journal
) -> BackupRecord:
    with journal.step("Identify last good backup", f"{RUNBOOK} step 1") as step:
        record = catalog.latest_before(incident)
        step.detail = record.uri
    with journal.step("Download backup", f"{RUNBOOK} step 2") as step:
        path: Path = catalog.download(record, target.workdir)
        step.detail = f"{record.uri}: {path.stat().st_size} bytes"
    with journal.step("Verify checksum", f"{RUNBOOK} step 2") as step:
        catalog.verify(record, path)
        step.detail = "checksums match"
    with journal.step("Restore offsets database", f"{RUNBOOK} step 3") as step:
        replace_database(target.endpoint, target.database, path)
        step.detail = f"{target.database} replaced from {record.key}"
    return record
