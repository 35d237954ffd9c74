"""The game day relies on ``--dist loadgroup``: the scenarios of one application share a
worker, which seeds that application once. The pinned pytest and pytest-xdist must keep
grouping (pytest 9.2 with pytest-xdist 3.8 silently stopped: pytest-xdist#1386)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPED = """
import os
import pytest

@pytest.mark.xdist_group("seeded-once")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i, tmp_path_factory):
    out = tmp_path_factory.getbasetemp().parent.parent / f"ran-{i}"
    out.write_text(os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
"""


def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "t").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:drtests",
            "--basetemp",
            str(tmp_path / "t" / "b"),
            str(tmp_path / "test_grouped.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {(tmp_path / "t" / f"ran-{i}").read_text() for i in range(6)}
    assert len(workers) == 1, f"one group ran on {sorted(workers)}"
