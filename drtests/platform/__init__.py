"""Where the platform's services run: one interface for the procedures, whatever runs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class JobRun:
    """The last run of a scheduled job (a Kubernetes CronJob's last Job, or a local one)."""

    started_at: datetime
    succeeded: bool
    detail: str = ""


@dataclass(frozen=True)
class TestJobResult:
    """The runbooks' test job: its end state, duration and log (kept as evidence)."""

    name: str
    state: str  # COMPLETED or FAILED
    seconds: float
    log: str


@dataclass(frozen=True)
class PodTimes:
    """One replacement pod: kill → created (rescheduling), kill → Ready."""

    pod: str
    rescheduled_s: float
    ready_s: float

    @property
    def readiness_s(self) -> float:
        """created → Ready, the pod's own start-up (Krkn's pod readiness time)"""
        return self.ready_s - self.rescheduled_s


@dataclass(frozen=True)
class PodRecovery:
    """Recovery after a pod kill, measured as Krkn reports it: the workload is recovered
    when as many pods are Ready as before the kill; each replacement is reported."""

    workload: str
    rescheduled_s: float  # kill → the last replacement was created
    ready_s: float  # kill → the last replacement is ready (total recovery)
    pods: tuple[PodTimes, ...] = ()

    @property
    def total_s(self) -> float:
        return self.ready_s

    def describe(self) -> str:
        text = (
            f"{self.workload}: rescheduled after {self.rescheduled_s:.2f}s, "
            f"ready after {self.ready_s:.2f}s"
        )
        if len(self.pods) > 1:
            text += (
                " ("
                + "; ".join(
                    f"{p.pod} rescheduled {p.rescheduled_s:.2f}s, ready {p.ready_s:.2f}s"
                    for p in self.pods
                )
                + ")"
            )
        return text


class Platform(Protocol):
    """What the runbooks do with workloads: scale, wait for readiness, kill."""

    def replicas(self, workload: str) -> int: ...

    def scale(self, workload: str, replicas: int) -> None: ...

    def wait_ready(self, workload: str, timeout: float) -> float: ...

    def kill(self, workload: str) -> None: ...

    def delete_spark_applications(self, selector: str) -> int: ...

    def run_test_job(self, timeout: float) -> TestJobResult | None: ...

    def evidence(self, workload: str) -> list[str]: ...

    def job_exists(self, name: str) -> bool: ...

    def last_job_run(self, name: str) -> JobRun | None: ...
