"""A workload a procedure scaled to 0, kept in the fault ledger like a fault: a run killed
between the scale-down and the restart leaves the next run the replica count to restore."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drtests.faults.base import Fault, require
from drtests.platform import Platform


@dataclass(frozen=True)
class WorkloadTarget:
    """A workload on a platform; ``where`` names the platform for the ledger (a live
    cluster's context and namespace, or the run's own local platform)."""

    platform: Platform
    workload: str
    where: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"component": "platform", **self.where, "workload": self.workload}

    def safety_name(self) -> str:
        target = getattr(self.platform, "target", None)
        if callable(target):
            return str(target("workload", self.workload))
        return f"local://{self.workload}"


class ScaledDown(Fault[WorkloadTarget]):
    """Scaled to 0 by a restore procedure; reverted by scaling back to ``replicas``."""

    kind = "scaled-down"
    detected_by = ()

    def __init__(self, workload: str, replicas: int) -> None:
        self.workload = workload
        self.replicas = replicas

    def describe(self) -> str:
        return f"{self.workload} scaled to 0 from {self.replicas} by a restore procedure"

    def capture(self, target: WorkloadTarget) -> dict[str, Any]:
        return {"replicas": self.replicas}

    def apply(self, target: WorkloadTarget, undo: dict[str, Any]) -> None:
        target.platform.scale(self.workload, 0)

    def revert(self, target: WorkloadTarget, undo: dict[str, Any]) -> str:
        require(undo, "replicas")
        if target.platform.replicas(self.workload) > 0:
            return f"{self.workload} already running; nothing to do"
        target.platform.scale(self.workload, int(undo["replicas"]))
        return f"{self.workload} scaled back to {undo['replicas']}"
