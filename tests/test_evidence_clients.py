"""Each format read by the client its users read it with: junit.xml by junitparser (what CI
test reporters are built on), allure-results by the official Allure CLI (`allure generate`,
when Java is present), so "valid" means "renders", not "looks right to us"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from drtests.evidence.assemble import write_reports
from drtests.redaction import Redactor
from tests.test_evidence import T0, _run, _scenario

ROOT = Path(__file__).resolve().parents[1]


def _reports(tmp_path: Path) -> tuple[Path, Path]:
    """Two runs in one reports folder: the second carries the first's Allure history."""
    reports = tmp_path / "reports"
    first = _run([_scenario("ok"), _scenario("bad", verified=False)])
    broken = _scenario("broken", failed_step="Restore database")
    second = _run(
        [
            _scenario("ok"),
            _scenario("bad"),
            broken,
            _scenario("ctl", kind="control", verified=False),
        ],
        started=T0 + timedelta(days=1),
    )
    for run in (first, second):
        (reports / run.run_id).mkdir(parents=True)
        write_reports(reports / run.run_id, run, Redactor())
    return reports / first.run_id, reports / second.run_id


def test_junitparser_reads_every_case_and_its_outcome(tmp_path: Path) -> None:
    _, run_dir = _reports(tmp_path)
    xml = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    cases = {case.name: case for suite in suites for case in suite}
    assert set(cases) == {"ok", "bad", "broken", "ctl"}
    outcome = {
        name: type(case.result[0]).__name__ if case.result else "passed"
        for name, case in cases.items()
    }
    assert outcome["ok"] == "passed" and outcome["ctl"] == "passed"
    assert outcome["broken"] in {Failure.__name__, Error.__name__}
    assert Skipped.__name__ not in outcome.values()
    suite = suites[0]
    assert suite.tests == 4 and suite.failures + suite.errors == 1
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["ok.rto_achieved_s"] == "5.0"
    assert "Restore database" in (cases["broken"].system_out or "") + str(
        cases["broken"].result[0].message
    )


def _allure_cli() -> str | None:
    """The Allure CLI on the PATH, or the one package.json pins, installed with npm."""
    if found := os.environ.get("ALLURE") or shutil.which("allure"):
        return found
    local = ROOT / "node_modules" / ".bin" / "allure"
    if not local.exists() and shutil.which("npm"):
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ROOT,
            capture_output=True,
            timeout=600,
            check=False,
        )
    return str(local) if local.exists() else None


@pytest.mark.xdist_group("allure-cli")
def test_the_allure_cli_generates_the_report_with_history_and_no_warning(
    tmp_path: Path,
) -> None:
    if not shutil.which("java"):
        pytest.skip("the Allure CLI needs Java (./run tests installs it)")
    allure = _allure_cli()
    if allure is None:
        pytest.skip("no Allure CLI: not on the PATH and npm could not install package.json's")
    _, run_dir = _reports(tmp_path)
    out = tmp_path / "allure-report"
    generated = subprocess.run(
        [allure, "generate", str(run_dir / "allure-results"), "-o", str(out), "--clean"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = generated.stdout + generated.stderr
    assert generated.returncode == 0, log
    assert "WARN" not in log and "ERROR" not in log and "Exception" not in log, log
    summary = json.loads((out / "widgets" / "summary.json").read_text())
    assert summary["statistic"]["total"] == 4
    assert summary["statistic"]["failed"] + summary["statistic"]["broken"] == 1
    trend = json.loads((out / "widgets" / "history-trend.json").read_text())
    assert len(trend) == 2  # this run and the earlier one, carried in history/
    categories = json.loads((out / "data" / "categories.json").read_text())
    assert "restore error" in {child["name"].lower() for child in categories["children"]}
    environment = json.loads((out / "widgets" / "environment.json").read_text())
    assert environment, "the environment widget is empty"
    case = next(
        json.loads(p.read_text())
        for p in (out / "data" / "test-cases").glob("*.json")
        if json.loads(p.read_text())["name"] == "ok"
    )
    parameters = {p["name"]: p["value"] for p in case["parameters"]}
    assert parameters["RTO achieved / objective"] == "5.0s / 1800s"
