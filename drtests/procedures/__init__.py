"""The runbooks' procedures as timed steps, one module per runbook area."""

from drtests.procedures.database import RestoreOutcome, ServiceDatabase, take_safety_snapshot
from drtests.procedures.journal import RUNBOOK_HMS, RUNBOOK_RESTORE, Journal
from drtests.procedures.metastore import (
    MetastoreRestoreTarget,
    hms_full_restore,
    rollback_from_snapshot,
)

__all__ = [
    "RUNBOOK_HMS",
    "RUNBOOK_RESTORE",
    "Journal",
    "MetastoreRestoreTarget",
    "RestoreOutcome",
    "ServiceDatabase",
    "hms_full_restore",
    "rollback_from_snapshot",
    "take_safety_snapshot",
]
