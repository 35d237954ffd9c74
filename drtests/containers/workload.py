"""Containers as workloads: started, stopped and killed as pods are, under the same
supervisor as local processes; labelled so that a run's leftovers are removed by the next."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from drtests.containers.images import ensure_image
from drtests.errors import EnvironmentUnavailable
from drtests.processes import wait_until

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

    from drtests.containers.engine import ContainerEngine

OWNER_LABEL = "org.drtests.owner"  # host:pid of the run that made it


def run_labels() -> dict[str, str]:
    return {OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}"}


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


class _Exited(EnvironmentUnavailable):
    """The container stopped while it was being waited for."""


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
        def ready() -> bool:
            status = self.status()
            if status in ("exited", "dead"):
                raise _Exited(f"{self.name} container exited during start-up: {self.log_tail(3)}")
            return status == "running" and probe()

        try:
            return wait_until(ready, timeout, self.name, interval=0.2)
        except _Exited:
            raise
        except EnvironmentUnavailable as exc:
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


class ServiceContainer:
    """A service's container owned by this run: its image present or pulled, started with
    the run's labels, ready within the bound, removed at the end."""

    def __init__(
        self,
        engine: ContainerEngine,
        image: str,
        labels: dict[str, str],
        ready_timeout: float,
        pull_timeout: float,
    ) -> None:
        self.engine = engine
        self.image = image
        self.labels = labels
        self.ready_timeout = ready_timeout
        self.pull_timeout = pull_timeout
        self.process: ContainerWorkload | None = None
        self._container: DockerContainer | None = None

    def _launch(
        self, container: DockerContainer, name: str, what: str, probe: Callable[[], bool]
    ) -> None:
        """Start ``container`` (``what`` it runs) as workload ``name``; ``probe`` says when
        it is ready."""
        from docker.errors import DockerException

        container.with_kwargs(labels=self.labels)
        self._container = container  # removed at the end even if its start fails
        try:
            container.start()
        except DockerException as exc:
            raise EnvironmentUnavailable(
                f"cannot start {what} from image {self.image}: {exc}"
            ) from None
        self.process = ContainerWorkload(name, container.get_wrapped_container())
        self.process.wait_ready(probe, self.ready_timeout)

    def _ensure_image(self) -> None:
        ensure_image(self.engine.client(), self.image, self.pull_timeout)

    def remove(self) -> None:
        from docker.errors import DockerException

        if self._container is not None:
            with contextlib.suppress(DockerException):
                self._container.stop(force=True, delete_volume=True)
