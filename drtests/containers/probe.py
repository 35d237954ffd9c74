"""Which container engine answers: the one probe behind the image build, the engine
selection and ``./run``'s install step.

A ``docker`` command on the PATH proves nothing: many machines ship the client with no
engine behind it. An engine counts when its API answers ``info``. This module uses the
standard library only, so ``./run`` can call it as a script before any virtualenv exists:
``python3 drtests/containers/probe.py`` prints what it found and exits 0 when an engine
answers, 1 when none does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

#: the order a run prefers: a Docker engine that answers (the official images live there),
#: then Podman; the same order the engine selection follows for the API sockets
CLIENTS = ("docker", "podman")
PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ClientProbe:
    """One engine client on the PATH and what its ``info`` said."""

    name: str
    path: str | None
    answers: bool
    #: the engine's version when it answers, else why not (one line)
    detail: str
    #: where the client reaches its engine (Docker's current context), when it says
    host: str | None = None

    def describe(self) -> str:
        if self.path is None:
            return f"{self.name}: not installed"
        state = "engine answers" if self.answers else "no engine answers"
        return f"{self.name}: {self.path}, {state} ({self.detail})"


def probe_client(name: str, timeout: float = PROBE_TIMEOUT_S) -> ClientProbe:
    """Ask ``name info`` for the engine's version; a client that fails or hangs does not
    answer."""
    path = shutil.which(name)
    if path is None:
        return ClientProbe(name, None, False, "not on the PATH")
    argv = [path, "info", "--format", "{{.ServerVersion}}"]
    if name == "podman":
        argv = [path, "info", "--format", "{{.Version.Version}}"]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return ClientProbe(name, path, False, f"`{name} info` gave no answer in {timeout:.0f}s")
    except OSError as exc:
        return ClientProbe(name, path, False, f"`{name} info` could not run: {exc}")
    output = result.stdout.strip()
    if result.returncode != 0 or not output:
        lines = (result.stderr or result.stdout).strip().splitlines()
        why = lines[-1] if lines else f"`{name} info` exited {result.returncode} saying nothing"
        return ClientProbe(name, path, False, why)
    host = _docker_host(path, timeout) if name == "docker" else None
    return ClientProbe(name, path, True, f"version {output.splitlines()[-1]}", host)


def _docker_host(path: str, timeout: float) -> str | None:
    """The API address of the Docker client's current context (rootless Docker and Docker
    Desktop listen elsewhere than /var/run/docker.sock)."""
    try:
        result = subprocess.run(
            [path, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    host = result.stdout.strip()
    return host if result.returncode == 0 and "://" in host else None


def probe_clients(timeout: float = PROBE_TIMEOUT_S) -> list[ClientProbe]:
    return [probe_client(name, timeout) for name in CLIENTS]


def chosen(probes: list[ClientProbe]) -> ClientProbe | None:
    """The first client, in the run's order, whose engine answers."""
    return next((probe for probe in probes if probe.answers), None)


def main() -> int:
    probes = probe_clients()
    for probe in probes:
        print(f"containers: {probe.describe()}")
    use = chosen(probes)
    print(f"containers: using {use.name}" if use else "containers: no engine answers")
    return 0 if use else 1


if __name__ == "__main__":
    sys.exit(main())
