"""JUnit XML from the run document, valid against the schema Jenkins' xunit plugin checks
reports with (``junit-10.xsd``): properties only on the suite, where the schema allows
them, so each scenario's RTO and RPO are suite properties named after it, and readable
in the test case's ``system-out``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from drtests.evidence.model import RunRecord, ScenarioRecord
from drtests.redaction import Redactor

PASSING = {"passed", "control-held"}


def _duration(s: ScenarioRecord) -> float:
    if s.ended_at is None:
        return 0.0
    return max(0.0, (s.ended_at - s.started_at).total_seconds())


def _failure_message(s: ScenarioRecord) -> str:
    """What a CI test report shows first: the category and the step that failed."""
    message: str = s.failure_category or s.verdict
    failed = next((st for st in s.steps if st.status == "failed"), None)
    if failed is not None:
        message += f" at '{failed.name}'"
        if failed.detail:
            message += f": {failed.detail}"
    return message if len(message) <= 300 else message[:299] + "…"


def write_junit(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    failures = sum(1 for s in run.scenarios if s.verdict not in PASSING | {"dry-run"})
    skipped = sum(1 for s in run.scenarios if s.verdict == "dry-run")
    suite = ET.Element(
        "testsuite",
        {
            "name": f"drtests {run.kind} {run.run_id}",
            "tests": str(len(run.scenarios)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "timestamp": run.started_at.isoformat(),
            "time": f"{sum(_duration(s) for s in run.scenarios):.3f}",
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", run.run_id),
        ("environment", run.environment),
        ("profile", run.profile_name),
        ("profile_sha256", run.profile_sha256),
        ("operator", run.operator),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for s in run.scenarios:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"drtests.{s.procedure}",
                "name": s.scenario_id,
                "time": f"{_duration(s):.3f}",
            },
        )
        values = {"kind": s.kind, "verdict": s.verdict, "detected_by": ",".join(s.detected_by)}
        lines = [f"{s.kind}: {s.verdict}"]
        for label, objective in (("rto", s.rto), ("rpo", s.rpo)):
            if objective is None:
                continue
            values[f"{label}_objective_s"] = str(objective.objective_s)
            achieved = "not reached"
            if objective.achieved_s is not None:
                values[f"{label}_achieved_s"] = str(objective.achieved_s)
                values[f"{label}_met"] = str(bool(objective.met)).lower()
                achieved = f"{objective.achieved_s} s ({'met' if objective.met else 'missed'})"
            lines.append(f"{label.upper()} {achieved} of {objective.objective_s:.0f} s")
        for name, value in values.items():
            ET.SubElement(props, "property", {"name": f"{s.scenario_id}.{name}", "value": value})
        if s.verdict == "dry-run":
            ET.SubElement(case, "skipped", {"message": "dry run: plan recorded, nothing written"})
        elif s.verdict not in PASSING:
            failure = ET.SubElement(
                case, "failure", {"message": _failure_message(s), "type": s.verdict}
            )
            failed = [f"{st.name}: {st.detail}" for st in s.steps if st.status == "failed"]
            failure.text = "\n".join([*s.findings, *failed])
        ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suite)
    path = run_dir / "junit.xml"
    path.write_text(redact(ET.tostring(suite, encoding="unicode", xml_declaration=True)) + "\n")
    return path
