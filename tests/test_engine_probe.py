"""The engine probe decides by what answers, not by what is on the PATH: a ``docker``
client with no engine behind it (as many machines ship) is passed over, a client whose
engine answers is used — by the image build, ``containers check`` and ``./run`` alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drtests.containers.engine import engine_cli
from drtests.containers.probe import chosen, probe_clients
from drtests.errors import EnvironmentUnavailable

ROOT = Path(__file__).resolve().parents[1]
NO_DAEMON = (
    "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
    "Is the docker daemon running?' >&2; exit 1"
)


def _client(folder: Path, name: str, body: str) -> None:
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fake clients a test writes: the machine's own engines stay
    out of sight."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # another test may have pointed it
    return folder


def test_a_docker_client_without_an_engine_is_not_chosen(bin_dir: Path) -> None:
    _client(bin_dir, "docker", NO_DAEMON)
    probes = probe_clients(timeout=10)
    docker = probes[0]
    assert docker.path == str(bin_dir / "docker") and not docker.answers
    assert "Cannot connect to the Docker daemon" in docker.detail
    assert chosen(probes) is None
    with pytest.raises(EnvironmentUnavailable) as raised:
        engine_cli()
    message = str(raised.value)
    assert "no container engine answers" in message
    assert "docker: " in message and "podman: not installed" in message
    assert "apt-get install podman runc" in message


def test_a_reachable_engine_is_chosen(bin_dir: Path) -> None:
    _client(bin_dir, "docker", 'echo "28.2.2"')
    probes = probe_clients(timeout=10)
    assert chosen(probes) == probes[0]
    assert probes[0].detail == "version 28.2.2"
    assert engine_cli() == str(bin_dir / "docker")


def test_podman_is_chosen_when_the_docker_client_reaches_nothing(bin_dir: Path) -> None:
    _client(bin_dir, "docker", NO_DAEMON)
    _client(bin_dir, "podman", 'echo "5.4.2"')
    assert engine_cli() == str(bin_dir / "podman")


def test_a_client_that_hangs_does_not_answer(bin_dir: Path) -> None:
    _client(bin_dir, "docker", "exec /bin/sleep 30")
    probe = probe_clients(timeout=1)[0]
    assert not probe.answers and "no answer in 1s" in probe.detail


def test_the_install_step_uses_the_same_probe(bin_dir: Path) -> None:
    """``./run`` runs the probe as a plain script: exit 1 means "install Podman"."""
    _client(bin_dir, "docker", NO_DAEMON)
    script = ROOT / "drtests" / "containers" / "probe.py"
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "containers: no engine answers" in result.stdout
    _client(bin_dir, "podman", 'echo "5.4.2"')
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "containers: using podman" in result.stdout
    assert "drtests/containers/probe.py" in (ROOT / "run").read_text()


def test_the_run_uses_the_engine_of_the_docker_clients_context(
    bin_dir: Path, tmp_path: Path
) -> None:
    """A Docker client that answers through a context (rootless Docker, Docker Desktop) is
    followed to its engine's socket, not told to install Docker."""
    import json
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler

    from drtests.containers.engine import find_engine

    class Engine(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def address_string(self) -> str:
            return "engine"

        def do_GET(self) -> None:
            body = json.dumps(
                {"Version": "27.3.1", "ApiVersion": "1.47", "Components": [{"Name": "Engine"}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    socket_path = tmp_path / "rootless" / "docker.sock"
    socket_path.parent.mkdir()
    server = Server(str(socket_path), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _client(
        bin_dir,
        "docker",
        f'case "$1" in info) echo 27.3.1;; context) echo "unix://{socket_path}";; esac',
    )
    try:
        engine = find_engine(None, tmp_path / "engine")
    finally:
        server.shutdown()
        server.server_close()
    assert (engine.kind, engine.docker_host, engine.version) == (
        "docker",
        f"unix://{socket_path}",
        "27.3.1",
    )


def test_podman_that_does_not_answer_is_not_started_as_a_service(
    bin_dir: Path, tmp_path: Path
) -> None:
    from drtests.containers.engine import find_engine

    _client(bin_dir, "podman", "echo 'Error: cannot setup namespace' >&2; exit 125")
    started = time.monotonic()
    with pytest.raises(EnvironmentUnavailable) as raised:
        find_engine(None, tmp_path / "engine")
    assert time.monotonic() - started < 10
    assert "podman: " in str(raised.value) and "cannot setup namespace" in str(raised.value)
    assert "API service" not in str(raised.value)
