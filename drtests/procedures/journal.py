"""Timed steps: a scenario is fault → detect → restore → verify → record, and the
:class:`Journal` times each step (UTC timestamps for people, monotonic durations for RTO),
mirrors it as an Allure step and reports progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import allure

from drtests.errors import DRError
from drtests.evidence.model import StepRecord
from drtests.ledger import utcnow

RUNBOOK_HMS = "002 Hive Metastore Restore Runbook"
RUNBOOK_RESTORE = "000 Restore Procedure"


class ScaleLedger(Protocol):
    """Where a procedure writes down a workload it scales to 0, before it does, so that a
    run killed before the restart leaves the next run what to scale back."""

    def scaling_down(self, platform: Any, workload: str, replicas: int) -> None: ...

    def scaled_up(self, workload: str) -> None: ...


class Journal:
    """Timed steps of one scenario."""

    def __init__(
        self,
        progress: Callable[[str], None] | None = None,
        finished: Callable[[StepRecord], None] | None = None,
        status: Callable[[str, str, bool], None] | None = None,
        scale_ledger: ScaleLedger | None = None,
    ) -> None:
        self.steps: list[StepRecord] = []
        self._progress = progress
        self._finished = finished
        self._status = status
        self.scale_ledger = scale_ledger
        self._t0 = time.monotonic()

    def scaling_down(self, platform: Any, workload: str, replicas: int) -> None:
        if self.scale_ledger is not None and replicas > 0:
            self.scale_ledger.scaling_down(platform, workload, replicas)

    def scaled_up(self, workload: str) -> None:
        if self.scale_ledger is not None:
            self.scale_ledger.scaled_up(workload)

    @contextmanager
    def step(self, name: str, runbook_step: str) -> Iterator[StepRecord]:
        record = StepRecord(name=name, runbook_step=runbook_step, started_at=utcnow())
        self.steps.append(record)
        if self._progress is not None:
            self._progress(name)
        start = time.monotonic()
        with allure.step(f"{name} ({runbook_step})"):
            try:
                yield record
            except BaseException as exc:
                record.status = "failed"
                record.detail = str(exc) if isinstance(exc, DRError) else type(exc).__name__
                raise
            finally:
                record.duration_s = round(time.monotonic() - start, 3)
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
