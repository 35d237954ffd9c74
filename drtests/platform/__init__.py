"""Where the platform's services run: one interface for the procedures, whatever runs them."""

from __future__ import annotations

from typing import Protocol


class Platform(Protocol):
    """What the runbooks do with workloads: scale, wait for readiness, kill."""

    def replicas(self, workload: str) -> int: ...

    def scale(self, workload: str, replicas: int) -> None: ...

    def wait_ready(self, workload: str, timeout: float) -> float: ...

    def kill(self, workload: str) -> None: ...

    def delete_spark_applications(self, selector: str) -> int: ...
