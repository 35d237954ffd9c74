"""The runbooks' procedures as timed steps, one module per runbook area."""

from drtests.procedures.journal import RUNBOOK_HMS, RUNBOOK_RESTORE, Journal
from drtests.procedures.metastore import (
    MetastoreRestoreTarget,
    RestoreOutcome,
    hms_full_restore,
    rollback_from_snapshot,
    take_safety_snapshot,
)

__all__ = [
    "RUNBOOK_HMS",
    "RUNBOOK_RESTORE",
    "Journal",
    "MetastoreRestoreTarget",
    "RestoreOutcome",
    "hms_full_restore",
    "rollback_from_snapshot",
    "take_safety_snapshot",
]
