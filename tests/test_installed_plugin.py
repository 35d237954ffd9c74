"""drtests as a team installs it: the wheel built from this checkout, installed into a fresh
virtualenv outside the checkout with the example project (``examples/custom-scenario``:
its own fault, check, procedure and scenario with its negative control), and the game day
run from the example's folder. The plugin must serve the fixtures, the shipped scenarios
must travel with the package, and the custom scenario must be in every report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom-scenario"
#: one shipped scenario that needs no extra (S3 only): the shipped scenarios are found
SHIPPED = "version_restore and delete-prefix"

pytestmark = pytest.mark.xdist_group("installed-plugin")


def _run(argv: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    env["PIP_CONSTRAINT"] = str(ROOT / "constraints.txt")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the virtualenv's bin folder, a copy of the example project) outside the checkout."""
    tmp = tmp_path_factory.mktemp("installed")
    assert not tmp.resolve().is_relative_to(ROOT)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp), str(ROOT)], tmp
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp.glob("drtests-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp)
    assert made.returncode == 0, made.stderr
    project = tmp / "custom-scenario"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "reports"))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = _run([*pip, str(wheel), str(project)], tmp, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin", project


def test_the_example_project_runs_with_the_installed_package(
    installed: tuple[Path, Path],
) -> None:
    bin_dir, project = installed
    reports = project / "reports"
    argv = [str(bin_dir / "drtests"), "gameday", "--profile", "profile.toml", "-n", "1"]
    argv += ["--scenarios", "scenarios", "--report-dir", str(reports)]
    argv += ["-k", f"offsets or ({SHIPPED})"]
    done = _run(argv, project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "3 passed" in output, output[-3000:]
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    verdicts = {s["scenario_id"]: s["verdict"] for s in run["scenarios"]}
    assert verdicts["offsets_restore_after_a_rewind"] == "passed", verdicts
    assert verdicts["offsets_rewind_without_restore_fails_verification"] == "control-held"
    assert any(v == "passed" and "version_restore" in k for k, v in verdicts.items()), verdicts
    custom = next(s for s in run["scenarios"] if s["scenario_id"].startswith("offsets_restore"))
    assert custom["procedure"] == "offsets_restore"
    assert [s["name"] for s in custom["steps"]][-1] == "Restore offsets database"
    for report in ("report.html", "junit.xml", "summary.md"):
        text = (run_dir / report).read_text(encoding="utf-8")
        assert "offsets_restore_after_a_rewind" in text, report


def test_the_next_run_finds_the_projects_fault_through_its_entry_point(
    installed: tuple[Path, Path],
) -> None:
    bin_dir, project = installed
    code = (
        "from drtests.faults import fault_from_ledger as f; "
        "print(f('offsets-rewind', {'topic': 't'}).describe())"
    )
    done = _run([str(bin_dir / "python"), "-c", code], project)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "offsets of topic t rewound to 0"


def test_pytest_help_lists_the_plugins_options_in_their_group(
    installed: tuple[Path, Path],
) -> None:
    bin_dir, project = installed
    done = _run([str(bin_dir / "python"), "-m", "pytest", "--help"], project)
    assert done.returncode == 0, done.stderr[-2000:]
    group = done.stdout.split("disaster-recovery game day", 1)[1]
    for option in ("--dr-profile", "--dr-dry-run", "--dr-allow-destructive", "--dr-env"):
        assert option in group
