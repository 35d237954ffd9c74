"""Evidence: every format from the run document, tamper detection, checklists, findings,
clause mapping, trends, and no secret in any output."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from drtests.config import AttestationSetting, Profile, Safety
from drtests.evidence.assemble import assemble_run, write_reports
from drtests.evidence.findings import categorize
from drtests.evidence.junit import write_junit
from drtests.evidence.manifest import verify_manifest
from drtests.evidence.model import (
    CheckRecord,
    FaultRecord,
    ObjectiveResult,
    RunRecord,
    ScenarioRecord,
    StepRecord,
)
from drtests.redaction import Redactor

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 2, 11, 8, 0, tzinfo=UTC)
RESTORE_STEPS = (
    "Check restore target ready",
    "Identify last good backup",
    "Verify checksum",
    "Take safety snapshot",
    "Restore database",
    "Scale up metastore and wait ready",
    "Restart dependent services",
)
VERIFICATION = (
    "metastore_accessible",
    "table_count_per_database",
    "orphaned_partitions",
    "missing_storage_descriptors",
    "fingerprints_match_baseline",
    "s3_paths_exist",
)


def _scenario(
    name: str,
    *,
    rto: float = 5.0,
    verified: bool = True,
    detected: bool = True,
    failed_step: str | None = None,
    kind: str = "scenario",
) -> ScenarioRecord:
    steps = [
        StepRecord(
            name=s,
            runbook_step="rb",
            started_at=T0,
            ended_at=T0,
            duration_s=0.5,
            status="failed" if s == failed_step else "passed",
            detail=f"{s} ok",
        )
        for s in RESTORE_STEPS
    ]
    record = ScenarioRecord(
        scenario_id=name,
        title=name,
        procedure="hms_full_restore",
        component="metastore",
        kind="negative-control" if kind != "scenario" else "scenario",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=rto),
        faults=[
            FaultRecord(fault_id="f1", kind="sequence-behind", description="d", injected_at=T0)
        ],
        detected_by=["sequence_counters"] if detected else [],
        expected_detection=["sequence_counters"],
        detection=[CheckRecord(name="sequence_counters", ok=not detected)],
        steps=steps if kind == "scenario" else [],
        restored=kind == "scenario",
        verification=[CheckRecord(name=c, ok=verified) for c in VERIFICATION],
        verified=verified,
        backup="s3://spark-backups/hive-metastore/b.dump",
        rto=ObjectiveResult(objective_s=1800, achieved_s=rto, met=rto <= 1800 and verified),
        rpo=ObjectiveResult(objective_s=3600, achieved_s=1.0, met=True),
    )
    passed = verified and detected and failed_step is None and rto <= 1800
    if kind == "scenario":
        record.verdict = "passed" if passed else "failed"
    else:
        record.verdict = "control-held" if not verified else "control-broken"
    return record


def _run(
    scenarios: list[ScenarioRecord], profile: Profile | None = None, started: datetime = T0
) -> RunRecord:
    return assemble_run(
        run_id=f"run-{started:%Y%m%d-%H%M%S}",
        started_at=started,
        ended_at=started + timedelta(minutes=5),
        operator="jane",
        profile=profile or Profile(name="staging", environment="live"),
        targets=["postgresql://db/m"],
        runbooks={"000.txt": "a" * 64},
        dry_run=False,
        scenarios=scenarios,
        participants=[],
        attestations=[],
    )


def _airflow_api_timeout() -> ScenarioRecord:
    """The game day on a busy machine: the smoke DAG's API call timed out, and the test's
    failure message repeats the step's error behind the exception's class."""
    record = _scenario("airflow", failed_step="Verify checksum")
    record.component, record.procedure = "airflow", "airflow_restore"
    step = next(s for s in record.steps if s.status == "failed")
    step.name = "Run a DAG end to end"
    step.detail = "Airflow API /dags/dr_smoke/dagRuns/x: 127.0.0.1:8080 unreachable (timed out)"
    record.findings.append(f"EnvironmentUnavailable: {step.detail}")
    return record


def test_failure_categories_and_their_escalation() -> None:
    rejected = _scenario("f", failed_step="Verify checksum")
    rejected.restored = False
    cases = {
        "fault not detected": _scenario("a", detected=False),
        "restore error": _scenario("b", failed_step="Restore database"),
        "verification mismatch": _scenario("c", verified=False),
        "objective missed": _scenario("d", rto=4000),
        "negative control broken": _scenario("e", kind="control"),
        "backup rejected": rejected,
        "service unavailable": _airflow_api_timeout(),
    }
    for category, record in cases.items():
        assert categorize(record) == category, category
    run = _run(list(cases.values()))
    levels = {f.category: f.escalation for f in run.findings}
    assert levels["restore error"].startswith("Level 4: Database Team")
    assert levels["backup rejected"].startswith("Level 4: Database Team")
    assert levels["fault not detected"].startswith("Level 2: Data Engineering")
    assert levels["objective missed"].startswith("Level 1: Operations")
    # an Airflow API that did not answer is Airflow's owners' to look at, not a database's
    unavailable = next(f for f in run.findings if f.category == "service unavailable")
    assert unavailable.escalation.startswith("Level 2: Data Engineering")
    assert "backup" not in unavailable.remediation
    assert unavailable.why.count("unreachable (timed out)") == 1, unavailable.why
    assert all(f.follow_up == "open" for f in run.findings)
    assert not run.passed


def test_compliance_scope_says_what_the_evidence_proves() -> None:
    """A run on an environment it created proves the procedure on test data; "met" only
    for live targets. Every clause carries its criteria."""
    records = [_scenario("ok"), _scenario("control", kind="control")]
    owned = _run(records, Profile(name="local", environment="local"))
    live = _run(records, Profile(name="staging", environment="live"))
    owned_status = {f"{c.framework} {c.clause}": c.status for c in owned.clauses}
    live_status = {f"{c.framework} {c.clause}": c.status for c in live.clauses}
    assert owned_status["SOC 2 A1.3"] == "validated on test data"
    assert live_status["SOC 2 A1.3"] == "met"
    assert "met" not in owned_status.values()
    assert all(c.criteria for c in owned.clauses)
    assert "not evidence of the production control" in owned.clauses[0].scope
    assert "live" in live.clauses[0].scope


def test_a_missing_achieved_value_reads_not_reached() -> None:
    record = _scenario("broken", failed_step="Restore database")
    assert record.rto is not None
    record.rto.achieved_s = None
    run = _run([record], Profile(name="staging", environment="live"))
    text = " ".join(e for c in run.clauses for e in c.evidence)
    assert "Nones" not in text and "None" not in text
    assert "RTO not reached of 1800s" in text


def test_checklists_take_evidence_and_attestations() -> None:
    profile = Profile(
        name="prod",
        safety=Safety(production=True),
        attestations=(AttestationSetting(item="stakeholders-notified", by="Jane", role="IC"),),
    )
    run = _run([_scenario("ok")], profile)
    items = {i.item: i for c in run.checklists for i in c.items}
    assert items["Checksum validated"].status == "passed"
    assert items["Stakeholders notified"].status == "attested"
    assert items["Stakeholders notified"].attested_by == "Jane (IC)"
    assert items["Maintenance window scheduled (if production)"].status == "not-attested"
    assert items["Airflow DAGs loaded successfully"].status == "not-run"
    failing = _run([_scenario("bad", verified=False)])
    items = {i.item: i for c in failing.checklists for i in c.items}
    assert items["Data integrity verified (checksums)"].status == "failed"
    # a repair or a pod kill restores no backup: the Restore Procedure's items ignore it
    repair = _scenario("repair", verified=True)
    repair.procedure, repair.steps, repair.verification = "hms_metadata_repair", [], []
    items = {i.item: i for c in _run([_scenario("ok"), repair]).checklists for i in c.items}
    assert items["Backup identified and verified"].status == "passed"
    assert items["Test job completed successfully"].status == "failed"  # no such step here


def test_clause_mapping_follows_the_results() -> None:
    good = _run([_scenario("ok"), _scenario("ctl", kind="control", verified=False)])
    assert {c.clause: c.status for c in good.clauses} == {
        "A1.3": "met",
        "A.5.30": "met",
        "A.8.13": "met",
        "8.5": "met",
        "Art. 11": "met",
        "Art. 12": "met",
        "Art. 12(2)": "not covered",
        "Art. 24": "met",
        "Art. 25": "met",
        "12.10.2": "met",
    }
    slow = _run([_scenario("slow", rto=4000), _scenario("ctl", kind="control", verified=False)])
    statuses = {c.clause: c.status for c in slow.clauses}
    assert statuses["A.5.30"] == "not met" and statuses["8.5"] == "met"


def test_restore_tests_of_the_backups_answer_the_backup_clauses() -> None:
    tested = _scenario("restore_test")
    tested.procedure = "restore_test_metastore"
    run = _run([tested])
    assert run.kind == "restore test" and _run([_scenario("ok")]).kind == "game day"
    statuses = {c.clause: c for c in run.clauses}
    assert statuses["Art. 12(2)"].status == "met" and statuses["A.8.13"].status == "met"
    assert "data age" in statuses["Art. 12(2)"].evidence[0]
    # not a game day: no restore checklist to fill, no exercise of the plan to claim
    assert run.checklists == [] and statuses["8.5"].status == "not covered"
    assert "every tested backup restored" in run.nothing_found
    stale = _scenario("restore_test", verified=False)
    stale.procedure = "restore_test_airflow"
    statuses = {c.clause: c.status for c in _run([stale]).clauses}
    assert statuses["Art. 12(2)"] == "not met" and statuses["A.8.13"] == "not met"


def test_every_format_and_no_planted_secret(tmp_path: Path) -> None:
    secret = "Planted-Secret-7731"
    record = _scenario("bad", failed_step="Restore database")
    record.findings.append(f"pg_restore failed for postgresql://hive:{secret}@db/metastore")
    record.steps[4].detail = f"password {secret} rejected; " + "undelete: key/x.parquet; " * 400
    run = _run([record])
    head = write_reports(tmp_path, run, Redactor([secret]))
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {
        "run.json",
        "report.html",
        "report.pdf",
        "summary.md",
        "junit.xml",
        "manifest.sha256.json",
        "SHA256SUMS",
        "allure-results/categories.json",
        "allure-results/environment.properties",
    } <= names
    assert len(head) == 64
    pdf = pdfium.PdfDocument(tmp_path / "report.pdf")
    pdf_text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    for needle in ("Sign-off", "Compliance mapping", "SOC 2", "Pre-Restore Checklist", "F-001"):
        assert needle in pdf_text
    everything = pdf_text + "".join(
        p.read_text(errors="replace")
        for p in tmp_path.rglob("*")
        if p.suffix != ".pdf" and p.is_file()
    )
    assert secret not in everything
    junit = (tmp_path / "junit.xml").read_text()
    assert f'name="{record.scenario_id}.rto_achieved_s" value="5.0"' in junit
    assert "<failure" in junit
    result = next(
        json.loads(p.read_text()) for p in (tmp_path / "allure-results").glob("*-result.json")
    )
    assert result["status"] == "failed"
    assert result["statusDetails"]["message"].startswith("restore error")
    assert [s["name"] for s in result["steps"]][4].startswith("Restore database")


def test_manifest_names_every_change(tmp_path: Path) -> None:
    write_reports(tmp_path, _run([_scenario("ok")]), Redactor())
    assert verify_manifest(tmp_path) == []
    (tmp_path / "report.html").write_text("edited")
    (tmp_path / "summary.md").unlink()
    (tmp_path / "allure-results" / "extra.json").write_text("{}")
    problems = {str(p) for p in verify_manifest(tmp_path)}
    assert problems == {
        "modified: report.html",
        "removed: summary.md",
        "added: allure-results/extra.json",
    }


def test_editing_the_manifest_breaks_the_chain(tmp_path: Path) -> None:
    write_reports(tmp_path, _run([_scenario("ok")]), Redactor())
    manifest = tmp_path / "manifest.sha256.json"
    document = json.loads(manifest.read_text())
    (tmp_path / "run.json").write_text("{}")
    document["entries"][-2]["sha256"] = "0" * 64  # pretend the forged file was always there
    manifest.write_text(json.dumps(document))
    assert any(p.kind == "chain-broken" for p in verify_manifest(tmp_path))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drtests.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_commands_rerender_verify_and_trend(tmp_path: Path) -> None:
    runs = []
    for day in range(3):
        folder = tmp_path / f"run{day}"
        folder.mkdir()
        started = T0 + timedelta(days=90 * day)
        write_reports(folder, _run([_scenario("ok", rto=5.0 + day)], started=started), Redactor())
        runs.append(folder)
    (runs[0] / "report.html").unlink()
    (runs[2] / "notes.txt").write_text("not evidence")
    adopted = _cli("report", str(runs[2]))
    assert adopted.returncode == 2 and "refusing to re-render: added: notes.txt" in adopted.stderr
    (runs[2] / "notes.txt").unlink()
    assert _cli("report", str(runs[0])).returncode == 0
    assert (runs[0] / "report.html").exists()
    assert _cli("report", "verify", str(runs[0])).returncode == 0

    document = json.loads((runs[1] / "run.json").read_text())
    document["scenarios"][0]["rto"]["achieved_s"] = 1.0  # a better RTO than was measured
    (runs[1] / "run.json").write_text(json.dumps(document))
    refused = _cli("report", str(runs[1]))
    assert refused.returncode == 2 and "refusing to re-render: modified: run.json" in refused.stderr
    tampered = _cli("report", "verify", str(runs[1]))
    assert tampered.returncode == 1 and "modified: run.json" in tampered.stdout

    out = tmp_path / "trend.html"
    trend = _cli("report", "--history", str(tmp_path), "--out", str(out))
    assert trend.returncode == 0, trend.stderr
    assert "trend of 3 runs" in trend.stdout
    page = out.read_text()
    # a point per run in the RTO chart and in the data-age chart
    assert page.count("<circle") == 6 and "data age (RPO achieved) trend" in page


@pytest.mark.parametrize("args", [["report"], ["report", "verify"], ["report", "/no/such/dir"]])
def test_report_bad_input_is_one_line(args: list[str]) -> None:
    result = _cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("drtests: error:") and "Traceback" not in result.stderr


def test_schema_in_the_repository_matches_the_model() -> None:
    from drtests.evidence.schema import SCHEMA_PATH, run_schema

    assert json.loads(SCHEMA_PATH.read_text()) == run_schema(), (
        "run the model's schema again: python -m drtests.evidence.schema"
    )


def test_follow_up_is_recorded_and_rechained(tmp_path: Path) -> None:
    write_reports(tmp_path, _run([_scenario("slow", rto=4000)]), Redactor())
    done = _cli(
        "report",
        "follow-up",
        str(tmp_path),
        "F-001",
        "--status",
        "closed",
        "--by",
        "Jane Doe",
        "--note",
        "restore step parallelised",
    )
    assert done.returncode == 0, done.stderr
    run = RunRecord.model_validate_json((tmp_path / "run.json").read_text())
    assert (run.findings[0].follow_up, run.findings[0].follow_up_by) == ("closed", "Jane Doe")
    assert "restore step parallelised" in (tmp_path / "follow-ups.jsonl").read_text()
    assert verify_manifest(tmp_path) == []
    unknown = _cli("report", "follow-up", str(tmp_path), "F-009", "--status", "closed", "--by", "x")
    assert unknown.returncode == 2 and "no finding F-009 (findings: F-001)" in unknown.stderr


def test_application_checklist_items_judge_their_own_restores() -> None:
    """ "Airflow DAGs loaded successfully" is decided by the Airflow restores' DagBag and API
    checks; a failed one fails the item. The HMS items do not judge Airflow restores."""

    def airflow(name: str, ok: bool) -> ScenarioRecord:
        record = _scenario(name)
        record.procedure, record.component = "airflow_restore", "airflow"
        record.verification = [
            CheckRecord(name="airflow_dags_load", ok=ok),
            CheckRecord(name="airflow_api_accessible", ok=True),
        ]
        return record

    items = {
        i.item: i for c in _run([_scenario("ok"), airflow("af", True)]).checklists for i in c.items
    }
    assert items["Airflow DAGs loaded successfully"].status == "passed"
    assert items["Hive Metastore connectivity verified"].status == "passed"
    assert items["MLflow experiments accessible"].status == "not-run"
    items = {i.item: i for c in _run([airflow("af", False)]).checklists for i in c.items}
    assert items["Airflow DAGs loaded successfully"].status == "failed"
    assert "af: airflow_dags_load FAILED" in items["Airflow DAGs loaded successfully"].evidence


# ------------------------------------------------------------------ junit-10.xsd's rules

#: the structure Jenkins' xunit plugin's junit-10.xsd allows: children and attributes of
#: each element (written from the schema's rules; the schema itself is not copied here)
JUNIT10_CHILDREN = {
    "testsuites": {"testsuite"},
    "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
    "properties": {"property"},
    "property": set(),
    "testcase": {
        "skipped",
        "error",
        "failure",
        "rerunFailure",
        "rerunError",
        "flakyFailure",
        "flakyError",
        "system-out",
        "system-err",
    },
    "failure": set(),
    "error": set(),
    "skipped": set(),
    "system-out": set(),
    "system-err": set(),
}
JUNIT10_ATTRIBUTES = {
    "testsuites": ({"name", "time", "tests", "failures", "errors"}, set()),
    "testsuite": (
        {
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
        },
        {"name", "tests", "failures", "errors"},
    ),
    "testcase": ({"name", "time", "classname", "group"}, {"name"}),
    "property": ({"name", "value"}, {"name", "value"}),
    "properties": (set(), set()),
    "failure": ({"type", "message"}, set()),
    "error": ({"type", "message"}, set()),
    "skipped": ({"type", "message"}, set()),
    "system-out": (set(), set()),
    "system-err": (set(), set()),
}
SUREFIRE_TIME = r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?"


def junit10_violations(path: Path) -> list[str]:
    """Every place where ``path`` breaks junit-10.xsd's structure, named by its path."""
    import re
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()  # noqa: S314 (the suite's own file)
    problems = []
    if root.tag not in ("testsuites", "testsuite"):
        problems.append(f"/{root.tag}: not a testsuites or testsuite root")

    def visit(element: ET.Element, where: str) -> None:
        allowed_children = JUNIT10_CHILDREN.get(element.tag)
        if allowed_children is None:
            problems.append(f"{where}: unknown element")
            return
        allowed, required = JUNIT10_ATTRIBUTES[element.tag]
        for name in sorted(set(element.attrib) - allowed):
            problems.append(f"{where}: attribute {name} not allowed")
        for name in sorted(required - set(element.attrib)):
            problems.append(f"{where}: attribute {name} required")
        time = element.attrib.get("time")
        suite = element.tag in ("testsuite", "testsuites")
        if suite and time is not None and not re.fullmatch(SUREFIRE_TIME, time):
            problems.append(f"{where}: time {time!r} is not a SUREFIRE_TIME")
        if element.tag in ("property", "properties") and (element.text or "").strip():
            problems.append(f"{where}: text not allowed")
        for child in element:
            path_of_child = f"{where}/{child.tag}"
            if child.tag not in allowed_children:
                problems.append(f"{path_of_child}: not allowed in {element.tag}")
                continue
            visit(child, path_of_child)

    visit(root, f"/{root.tag}")
    return problems


def test_junit_is_valid_against_the_xunit_plugins_junit10_rules(tmp_path: Path) -> None:
    dry = _scenario("planned")
    dry.verdict = "dry-run"
    broken = _scenario("broken", failed_step="Restore database")
    assert broken.rto is not None
    broken.rto.achieved_s = None
    run = _run([_scenario("ok"), _scenario("ctl", kind="control"), broken, dry])
    path = write_junit(tmp_path, run, Redactor())
    assert junit10_violations(path) == []
    text = path.read_text()
    assert 'name="ok.rto_achieved_s" value="5.0"' in text
    assert "RTO not reached of 1800 s" in text  # in the failed case's system-out
    # the rules can fail: properties inside a test case, as JUnit writers often put them
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<testsuite name="s" tests="1" failures="0" errors="0" time="1,5">'
        '<testcase name="c"><properties><property name="a" value="b"/></properties>'
        "</testcase></testsuite>"
    )
    assert junit10_violations(bad) == [
        "/testsuite: time '1,5' is not a SUREFIRE_TIME",
        "/testsuite/testcase/properties: not allowed in testcase",
    ]


def test_allure_carries_objectives_and_the_earlier_runs_history(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = _run([_scenario("ok"), _scenario("bad", verified=False)])
    second = _run([_scenario("ok")], started=T0 + timedelta(days=1))
    for run in (first, second):
        (reports / run.run_id).mkdir(parents=True)
        write_reports(reports / run.run_id, run, Redactor())
    results = reports / second.run_id / "allure-results"
    result = next(json.loads(p.read_text()) for p in results.glob("*-result.json"))
    parameters = {p["name"]: p["value"] for p in result["parameters"]}
    assert parameters["RTO achieved / objective"] == "5.0s / 1800s"
    assert {"name": "tag", "value": "RTO met"} in result["labels"]
    history = json.loads((results / "history" / "history.json").read_text())
    earlier = history[result["historyId"]]
    assert [i["status"] for i in earlier["items"]] == ["passed"]
    assert earlier["statistic"]["total"] == 1
    trend = json.loads((results / "history" / "history-trend.json").read_text())
    assert trend[0]["reportName"] == first.run_id
    assert trend[0]["data"]["failed"] == 1 and trend[0]["data"]["passed"] == 1
