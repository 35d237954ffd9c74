"""Nothing the run starts outlives it: not after Ctrl-C, not after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int, cmdline: str) -> bool:
    try:
        now = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return now == cmdline


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_servers_die_with_the_run(sig: signal.Signals, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "scenarios",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "full_restore_from_backup and sequence",
            "--dr-report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        children: dict[int, str] = {}
        while time.monotonic() < deadline:
            children = _children(run.pid)
            if sum("moto.server" in c for c in children.values()) == 2 and any(
                "postgres" in c for c in children.values()
            ):
                break
            time.sleep(0.1)
        assert children, "the run started no server"
        run.send_signal(sig)
        run.wait(timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p, c) for p, c in children.items()):
            time.sleep(0.1)
        assert not [c for p, c in children.items() if _alive(p, c)]
    finally:
        if run.poll() is None:
            run.kill()
