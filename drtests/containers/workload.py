"""Containers as workloads: started, stopped and killed as pods are, under the same
supervisor as local processes; labelled so that a run's leftovers are removed by the next."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from drtests.errors import EnvironmentUnavailable
from drtests.processes import wait_until

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

OWNER_LABEL = "org.drtests.owner"  # host:pid of the run that made it


def run_labels() -> dict[str, str]:
    return {OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}", "org.drtests": "true"}


def publish_on_loopback(container: DockerContainer, port: int, host_port: int) -> None:
    """Publish a container port on 127.0.0.1 only, at a port that stays the same across
    restarts (docker-py takes an (address, port) pair; testcontainers' annotation is
    narrower)."""
    container.ports[f"{port}/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]


def _owner_gone(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's, or not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_leftovers(client: docker.DockerClient) -> list[str]:
    """Remove containers and volumes labelled by runs on this machine that are gone (killed
    before their finalizers ran); returns their names."""
    from docker.errors import DockerException

    removed: list[str] = []
    try:
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if _owner_gone(container.labels.get(OWNER_LABEL, "")):
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
        for volume in client.volumes.list(filters={"label": OWNER_LABEL}):
            labels = volume.attrs.get("Labels") or {}
            if _owner_gone(labels.get(OWNER_LABEL, "")):
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
    except DockerException as exc:
        raise EnvironmentUnavailable(f"cannot list leftover containers: {exc}") from None
    return removed


class ContainerWorkload:
    """One container under a workload name: the supervisor's view of it."""

    def __init__(self, name: str, container: Container) -> None:
        self.name = name
        self._container = container

    @property
    def log_name(self) -> str:
        return f"container {self._container.name}"

    def _call(self, what: str, action: Callable[[], object]) -> None:
        from docker.errors import DockerException

        try:
            action()
        except DockerException as exc:
            raise EnvironmentUnavailable(
                f"{self.name}: cannot {what} its container: {exc}"
            ) from None

    def status(self) -> str:
        from docker.errors import DockerException

        try:
            self._container.reload()
        except DockerException:
            return "unknown"
        return str(self._container.status)

    def running(self) -> bool:
        return self.status() == "running"

    def start(self) -> None:
        if not self.running():
            self._call("start", self._container.start)

    def stop(self) -> None:
        self._call("stop", lambda: self._container.stop(timeout=15))

    def kill(self) -> None:
        """SIGKILL to the container's first process: the kernel takes every other process
        of the container with it, as a pod kill does."""
        if self.running():
            self._call("kill", self._container.kill)
        wait_until(lambda: not self.running(), 15, f"{self.name} container to stop")

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30) -> float:
        start = time.monotonic()

        def ready() -> bool:
            status = self.status()
            if status in ("exited", "dead"):
                raise EnvironmentUnavailable(
                    f"{self.name} container exited during start-up: {self.log_tail(3)}"
                )
            return status == "running" and probe()

        try:
            return wait_until(ready, timeout, self.name, interval=0.2)
        except EnvironmentUnavailable as exc:
            if time.monotonic() - start < timeout:
                raise
            raise EnvironmentUnavailable(
                f"{exc}; its last log lines: {self.log_tail(3) or '(none)'}"
            ) from None

    def log_tail(self, lines: int = 3) -> str:
        from docker.errors import DockerException

        try:
            raw = self._container.logs(tail=lines)
        except DockerException:
            return ""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return " | ".join(line.strip() for line in text.strip().splitlines())
