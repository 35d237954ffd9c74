"""Finding a container engine: Docker, or Podman through its Docker-compatible API.

testcontainers speaks the Docker API. Where no Docker daemon runs but Podman is installed,
this run starts ``podman system service`` on a socket of its own (a child that dies with
the run) and points testcontainers at it the way Podman's documentation says: no Ryuk
reaper (the suite removes what it labelled instead), ports reached on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drtests.containers.probe import chosen, probe_clients
from drtests.errors import EnvironmentUnavailable
from drtests.processes import ManagedProcess

if TYPE_CHECKING:
    import docker

INSTALL_HINT = (
    "install Docker, or Podman with runc (Debian: apt-get install podman runc), "
    "or set DOCKER_HOST (or [containers] docker_host) to an engine's API socket"
)
DOCKER_SOCKET = Path("/var/run/docker.sock")


@dataclass
class ContainerEngine:
    """An engine that answered, and how this run reaches it."""

    kind: str  # docker or podman
    docker_host: str
    version: str
    #: the Podman API service this run started, if it started one
    service: ManagedProcess | None = None
    _client: docker.DockerClient | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.version} at {self.docker_host}"

    def client(self) -> docker.DockerClient:
        """This run's client of the engine (one connection pool for every call)."""
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.docker_host, timeout=60)
        return self._client

    def configure_testcontainers(self) -> None:
        """Point testcontainers at this engine (its settings are read at import, so they
        are set on its configuration object, and DOCKER_HOST for its client)."""
        from testcontainers.core.config import ConnectionMode, testcontainers_config

        os.environ["DOCKER_HOST"] = self.docker_host
        if self.kind == "podman":
            testcontainers_config.ryuk_disabled = True
            testcontainers_config.tc_host_override = "127.0.0.1"
            testcontainers_config.connection_mode_override = ConnectionMode.docker_host

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.service is not None:
            self.service.stop()


def _answers(docker_host: str, timeout: float = 5) -> tuple[str, str] | str:
    """(kind, version) of the engine at ``docker_host``, or why it did not answer."""
    import docker
    from docker.errors import DockerException

    client = None
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=int(timeout))
        info = client.version()
    except (DockerException, OSError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        if client is not None:
            client.close()
    names = " ".join(str(c.get("Name", "")) for c in info.get("Components", []))
    kind = "podman" if "podman" in names.lower() else "docker"
    return kind, str(info.get("Version", "?"))


def _socket_url(path: Path) -> str:
    return f"unix://{path}"


def _unix_socket_open(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def find_engine(docker_host: str | None, workdir: Path, timeout: float = 30) -> ContainerEngine:
    """The engine named by the profile or DOCKER_HOST; else the one the answering Docker
    client uses (its context), Docker's socket or a Podman socket that answers; else a
    Podman API service started for this run, when ``podman info`` answers."""
    named = docker_host or os.environ.get("DOCKER_HOST")
    if named:
        found = _answers(named)
        if isinstance(found, str):
            raise EnvironmentUnavailable(
                f"the container engine at {named} does not answer ({found}): start it, "
                "or point DOCKER_HOST / [containers] docker_host at one that runs"
            )
        return ContainerEngine(found[0], named, found[1])
    probes = {probe.name: probe for probe in probe_clients()}
    docker = probes["docker"]
    if docker.answers and docker.host:
        found = _answers(docker.host)
        if not isinstance(found, str):
            return ContainerEngine(found[0], docker.host, found[1])
    candidates = [DOCKER_SOCKET, Path("/run/podman/podman.sock")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "podman" / "podman.sock")
    for path in candidates:
        if path.exists():
            found = _answers(_socket_url(path))
            if not isinstance(found, str):
                return ContainerEngine(found[0], _socket_url(path), found[1])
    podman = probes["podman"]
    if not podman.answers or podman.path is None:
        said = "; ".join(probe.describe() for probe in probes.values())
        raise EnvironmentUnavailable(f"no container engine answers ({said}): {INSTALL_HINT}")
    return _start_podman_service(podman.path, workdir, timeout)


def _start_podman_service(podman: str, workdir: Path, timeout: float) -> ContainerEngine:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "podman.sock"
    service = ManagedProcess(
        "podman-api",
        [podman, "system", "service", "--time=0", _socket_url(path)],
        workdir / "podman-api.log",
    )
    service.start()
    deadline = time.monotonic() + timeout
    while not _unix_socket_open(path):
        if not service.running() or time.monotonic() > deadline:
            service.stop()
            raise EnvironmentUnavailable(
                f"podman's API service did not start ({service.log_tail(2) or 'no output'}): "
                "check `podman info`; on machines that run inside a container, set "
                '[engine] runtime = "runc" and [containers] default_ulimits = [] in '
                "/etc/containers/containers.conf"
            )
        time.sleep(0.1)
    found = _answers(_socket_url(path))
    if isinstance(found, str):
        service.stop()
        raise EnvironmentUnavailable(f"podman's API service does not answer: {found}")
    return ContainerEngine("podman", _socket_url(path), found[1], service=service)


def engine_cli() -> str:
    """The command line of the engine that answers, for building images: the same probe
    and order as ``./run``'s install step (a client with no engine behind it is passed
    over)."""
    probes = probe_clients()
    use = chosen(probes)
    if use is None or use.path is None:
        found = "; ".join(probe.describe() for probe in probes)
        raise EnvironmentUnavailable(f"no container engine answers ({found}): {INSTALL_HINT}")
    return use.path
