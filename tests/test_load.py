"""Load mode's parts: the slow network holds responses back but delivers them whole, the
CPU hog keeps every core busy and goes away with the run, and ``--dr-load`` puts both
under a run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drtests.errors import EnvironmentUnavailable
from drtests.http import request_json
from drtests.load import CpuHog, SlowProxy, client_url, slow_network

DELAY_S = 1.0
BODY = {"rows": ["x" * 100] * 2000}  # ~200 kB: more than one chunk


@pytest.fixture
def service() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            raw = json.dumps(BODY).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_slow_network_holds_each_answer_back_and_delivers_it_whole(service: str) -> None:
    slow_network(DELAY_S)
    try:
        proxied = client_url(f"{service}/api")
        assert proxied != f"{service}/api" and client_url("https://example.org/") == (
            "https://example.org/"
        )
        for _ in range(2):  # every request, not only the first
            began = time.monotonic()
            assert request_json("GET", f"{service}/api", what="probe") == BODY
            assert time.monotonic() - began >= DELAY_S
    finally:
        slow_network(None)
    began = time.monotonic()
    request_json("GET", f"{service}/api", what="probe")
    assert time.monotonic() - began < DELAY_S


def test_behind_the_slow_network_only_the_deadline_fails_a_request(service: str) -> None:
    """A per-attempt timeout shorter than the network's delay is retried; the step's
    deadline, not one slow answer, ends it, and says how long it tried."""
    slow_network(DELAY_S)
    try:
        with pytest.raises(EnvironmentUnavailable, match=r"after \d+ attempts over \d+s"):
            request_json(
                "GET",
                f"{service}/api",
                what="probe",
                timeout=DELAY_S / 4,
                retry_until=time.monotonic() + 3,
            )
        assert (
            request_json(
                "GET",
                f"{service}/api",
                what="probe",
                timeout=DELAY_S * 3,
                retry_until=time.monotonic() + 10,
            )
            == BODY
        )
    finally:
        slow_network(None)


def test_a_proxy_to_a_service_that_is_down_refuses_like_it() -> None:
    proxy = SlowProxy(("127.0.0.1", 1), DELAY_S)
    try:
        with pytest.raises(EnvironmentUnavailable, match="probe"):
            request_json("GET", f"http://127.0.0.1:{proxy.port}/", what="probe", timeout=2)
    finally:
        proxy.stop()


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_the_cpu_hog_keeps_every_core_busy_and_stops() -> None:
    hog = CpuHog()
    hog.start()
    try:
        pids = hog.pids
        assert len(pids) == hog.processes >= 1
        before = [_cpu_ticks(p) for p in pids]
        time.sleep(1.0)
        assert all(_cpu_ticks(p) > b for p, b in zip(pids, before, strict=True))
    finally:
        hog.stop()
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]


def test_a_run_in_load_mode_is_slowed_and_leaves_nothing_behind(tmp_path: Path) -> None:
    test = tmp_path / "test_under_load.py"
    test.write_text(
        "from drtests.load import client_url\n"
        "def test_slowed():\n"
        "    assert client_url('http://127.0.0.1:9/') != 'http://127.0.0.1:9/'\n"
    )
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test),
            "-q",
            "-p",
            "no:cacheprovider",
            "--dr-load",
            "--dr-load-delay",
            "0.5",
            "--dr-report-dir",
            str(tmp_path / "r"),
            "--rootdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    hogs = subprocess.run(
        ["pgrep", "-f", f"drtests-cpu-hog {run.pid}$"], capture_output=True, text=True, check=False
    )
    assert hogs.stdout.strip() == "", "a CPU hog outlived its run"
