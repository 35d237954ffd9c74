"""The public API for your own DR scenarios, next to the shipped ones.

A scenario is a pytest test that uses the plugin's fixtures (installed with drtests:
``dr``, ``dr_environment``, ``scenario``, ``inject_fault``, ``tmp_path`` …) and reads like
the runbook it encodes::

    def test_offsets_restore(scenario, offsets, inject_fault):
        scenario.begin("offsets_restore", "offsets", "Offsets restore after a rewind", RUNBOOK)
        ...                                      # baseline and backup
        scenario.incident()
        inject_fault(RewindOffsets("clickstream"), offsets.target)
        scenario.detected([offsets_match(...)], RewindOffsets.detected_by)
        with scenario.journal.step("Restore offsets", f"{RUNBOOK} step 3"):
            ...
        scenario.restored(backup.uri)
        scenario.verified([offsets_match(...)])
        scenario.measured_rpo(RpoMeasurement(...))
        scenario.assert_objectives_met()

What each piece promises:

- :class:`Fault` — ``describe``; ``capture`` (reads only: everything the revert needs);
  ``apply``; ``revert`` (idempotent and exact). ``inject_fault`` passes the safety rails
  with the target's ``safety_name()``, writes the ledger entry and the undo record before
  ``apply`` runs, and reverts in its finalizer whatever the test did. Register the class
  under the ``drtests.faults`` entry point group so the next run can revert what a killed
  run left (on targets a profile reaches: :class:`DatabaseTarget`, :class:`BucketTarget`).
- a check — a function returning a :class:`CheckResult` whose :class:`Finding` s name
  what is wrong; :func:`run_check` turns an exception into a failed check, not a crash.
- a procedure step — ``with scenario.journal.step(name, runbook_step):``, timed, in every
  report, with its runbook reference.
- objectives — ``[objectives.<procedure>]`` in the profile (``rto_seconds``,
  ``rpo_seconds``); :meth:`ScenarioRecorder.begin` refuses a procedure without one.
- evidence — whatever the recorder is told is in ``run.json``, HTML, PDF, Markdown,
  JUnit and Allure, and in the compliance mapping, like the shipped scenarios.
- a negative control — the same test with the restore skipped (or sabotaged),
  ``scenario.begin(..., kind="negative-control")`` and ``assert not scenario.verified(...)``.
"""

from __future__ import annotations

from drtests.backups import BackupCatalog, BackupRecord
from drtests.config import Objective, Profile
from drtests.environments import Environment
from drtests.errors import DRError, EnvironmentUnavailable, RestoreFailed
from drtests.faults import FAULT_ENTRY_POINTS, BucketTarget, DatabaseTarget
from drtests.faults.base import Fault, FaultTarget, RevertIncomplete, require
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.plugin import DRSession
from drtests.postgres import (
    PostgresEndpoint,
    connect,
    create_database,
    drop_database,
    replace_database,
)
from drtests.procedures.journal import Journal
from drtests.results import CheckResult, Finding, RpoMeasurement, failed, run_check

__all__ = [
    "FAULT_ENTRY_POINTS",
    "BackupCatalog",
    "BackupRecord",
    "BucketTarget",
    "CheckResult",
    "DRError",
    "DRSession",
    "DatabaseTarget",
    "Environment",
    "EnvironmentUnavailable",
    "Fault",
    "FaultTarget",
    "Finding",
    "InjectFault",
    "Journal",
    "Objective",
    "PostgresEndpoint",
    "Profile",
    "RestoreFailed",
    "RevertIncomplete",
    "RpoMeasurement",
    "ScenarioRecorder",
    "connect",
    "create_database",
    "drop_database",
    "failed",
    "replace_database",
    "require",
    "run_check",
]
