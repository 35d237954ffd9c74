"""Timed steps: a scenario is fault → detect → restore → verify → record, and the
:class:`Journal` times each step (UTC timestamps for people, monotonic durations for RTO),
mirrors it as an Allure step and reports progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import allure

from drtests import patience
from drtests.errors import DRError
from drtests.evidence.model import StepRecord
from drtests.ledger import utcnow

RUNBOOK_HMS = "002 Hive Metastore Restore Runbook"
RUNBOOK_RESTORE = "000 Restore Procedure"


class WorkLedger(Protocol):
    """Where a procedure writes down what it changes outside the restored database before it
    does (a workload scaled to 0, a staging database created), so that a run killed midway
    leaves the next run what to put back or drop."""

    def scaling_down(self, platform: Any, workload: str, replicas: int) -> None: ...

    def scaled_up(self, workload: str) -> None: ...

    def creating_database(self, pg: Any, live: str, name: str, component: str) -> None: ...

    def database_gone(self, name: str) -> None: ...


class Journal:
    """Timed steps of one scenario."""

    def __init__(
        self,
        progress: Callable[[str], None] | None = None,
        finished: Callable[[StepRecord], None] | None = None,
        status: Callable[[str, str, bool], None] | None = None,
        work_ledger: WorkLedger | None = None,
    ) -> None:
        self.steps: list[StepRecord] = []
        self._progress = progress
        self._finished = finished
        self._status = status
        self.work_ledger = work_ledger
        self._t0 = time.monotonic()

    def scaling_down(self, platform: Any, workload: str, replicas: int) -> None:
        if self.work_ledger is not None and replicas > 0:
            self.work_ledger.scaling_down(platform, workload, replicas)

    def scaled_up(self, workload: str) -> None:
        if self.work_ledger is not None:
            self.work_ledger.scaled_up(workload)

    def creating_database(self, pg: Any, live: str, name: str, component: str) -> None:
        """Before a work database (``<live>__…``) is created beside ``live``."""
        if self.work_ledger is not None:
            self.work_ledger.creating_database(pg, live, name, component)

    def database_gone(self, name: str) -> None:
        if self.work_ledger is not None:
            self.work_ledger.database_gone(name)

    @contextmanager
    def step(self, name: str, runbook_step: str) -> Iterator[StepRecord]:
        record = StepRecord(name=name, runbook_step=runbook_step, started_at=utcnow())
        self.steps.append(record)
        if self._progress is not None:
            self._progress(name)
        start = time.monotonic()
        before = patience.tally()
        with allure.step(f"{name} ({runbook_step})"):
            try:
                yield record
            except BaseException as exc:
                record.status = "failed"
                record.detail = str(exc) if isinstance(exc, DRError) else type(exc).__name__
                raise
            finally:
                record.duration_s = round(time.monotonic() - start, 3)
                waited = patience.tally() - before
                record.slow_requests, record.retried_requests = waited.slow, waited.retried
                record.ended_at = utcnow()
                if self._finished is not None:
                    self._finished(record)

    def status(self, kind: str, name: str, ok: bool) -> None:
        """A state the Restore Progress dashboard shows: ``service`` ready, ``database`` up."""
        if self._status is not None:
            self._status(kind, name, ok)

    def planned(self, name: str, runbook_step: str, detail: str) -> None:
        self.steps.append(
            StepRecord(
                name=name,
                runbook_step=runbook_step,
                started_at=utcnow(),
                status="planned",
                detail=detail,
            )
        )
