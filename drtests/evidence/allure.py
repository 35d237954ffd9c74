"""allure-results from the run document: each runbook step an Allure step, the detection
and verification checks attached, environment.properties and categories.json."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from drtests.evidence.model import RunRecord, ScenarioRecord, StepRecord
from drtests.redaction import Redactor

CATEGORIES = [
    {
        "name": "Fault not detected",
        "matchedStatuses": ["failed"],
        "messageRegex": "fault not detected.*",
    },
    {
        "name": "Service unavailable",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": "service unavailable.*",
    },
    {
        "name": "Backup rejected",
        "matchedStatuses": ["failed"],
        "messageRegex": "backup rejected.*",
    },
    {
        "name": "Restore error",
        "matchedStatuses": ["failed"],
        "messageRegex": "(restore error|restore failed).*",
    },
    {
        "name": "Verification mismatch",
        "matchedStatuses": ["failed"],
        "messageRegex": "(verification mismatch|verification failed|negative control broken).*",
    },
    {
        "name": "Objective missed",
        "matchedStatuses": ["failed"],
        "messageRegex": "objective missed.*",
    },
    {
        "name": "Infrastructure error",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": "infrastructure error.*",
    },
]


def _ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment is not None else 0


def _status(s: ScenarioRecord) -> str:
    if s.verdict in {"passed", "control-held"}:
        return "passed"
    if s.verdict == "dry-run":
        return "skipped"
    broken = ("infrastructure error", "service unavailable")
    return "broken" if s.failure_category in broken else "failed"


def _step(step: StepRecord) -> dict[str, Any]:
    status = {"passed": "passed", "failed": "failed", "planned": "skipped"}.get(
        step.status, "skipped"
    )
    return {
        "name": f"{step.name} ({step.runbook_step})" if step.runbook_step else step.name,
        "status": status,
        "stage": "finished",
        "start": _ms(step.started_at),
        "stop": _ms(step.ended_at or step.started_at),
        "statusDetails": {"message": step.detail} if step.detail else {},
        "steps": [],
        "attachments": [],
        "parameters": [],
    }


def _history_id(s: ScenarioRecord) -> str:
    return hashlib.md5(s.scenario_id.encode()).hexdigest()  # noqa: S324 - an id, not a secret


def _objective_parameters(s: ScenarioRecord) -> list[dict[str, Any]]:
    """RTO and RPO, objective and achieved, as the test's parameters (left out of Allure's
    history id: a slower run is the same test)."""
    found = []
    for label, result in (("RTO", s.rto), ("RPO", s.rpo)):
        if result is None:
            continue
        achieved = "not reached" if result.achieved_s is None else f"{result.achieved_s:.1f}s"
        found.append(
            {
                "name": f"{label} achieved / objective",
                "value": f"{achieved} / {result.objective_s:.0f}s",
                "excluded": True,
            }
        )
    return found


def _objective_labels(s: ScenarioRecord) -> list[dict[str, str]]:
    """Whether each objective was met, as tags a reader can filter by."""
    labels = []
    for label, result in (("RTO", s.rto), ("RPO", s.rpo)):
        if result is not None and result.achieved_s is not None:
            labels.append({"name": "tag", "value": f"{label} {'met' if result.met else 'missed'}"})
    return labels


def _statistic(statuses: list[str]) -> dict[str, int]:
    counts = {k: statuses.count(k) for k in ("failed", "broken", "skipped", "passed", "unknown")}
    return {**counts, "total": len(statuses)}


def write_history(out: Path, earlier: list[RunRecord]) -> None:
    """Allure's history (``history/history.json``, ``history-trend.json``), made from the
    earlier runs' documents in the same reports folder: ``allure generate`` shows each
    test's earlier results and the trend without a report having been kept."""
    folder = out / "history"
    folder.mkdir(exist_ok=True)
    history: dict[str, dict[str, Any]] = {}
    for run in reversed(earlier):  # newest first, as Allure keeps them
        for s in run.scenarios:
            entry = history.setdefault(_history_id(s), {"items": []})
            start, stop = _ms(s.started_at), _ms(s.ended_at or s.started_at)
            entry["items"].append(
                {
                    "uid": hashlib.md5(f"{run.run_id}/{s.scenario_id}".encode()).hexdigest(),  # noqa: S324
                    "reportUrl": "",
                    "status": _status(s),
                    "time": {"start": start, "stop": stop, "duration": stop - start},
                }
            )
    for entry in history.values():
        entry["statistic"] = _statistic([i["status"] for i in entry["items"]])
    (folder / "history.json").write_text(json.dumps(history, indent=2))
    trend = [
        {
            "buildOrder": len(earlier) - i,
            "reportName": run.run_id,
            "reportUrl": "",
            "data": _statistic([_status(s) for s in run.scenarios]),
        }
        for i, run in enumerate(reversed(earlier))
    ]
    (folder / "history-trend.json").write_text(json.dumps(trend, indent=2))


def write_allure(
    run_dir: Path, run: RunRecord, redact: Redactor, earlier: list[RunRecord] | None = None
) -> Path:
    out = run_dir / "allure-results"
    out.mkdir(parents=True, exist_ok=True)
    if earlier:
        write_history(out, earlier)
    for s in run.scenarios:
        attachments = []
        for label, checks in (("detection", s.detection), ("verification", s.verification)):
            if not checks:
                continue
            source = f"{uuid.uuid4()}-attachment.json"
            body = json.dumps([c.model_dump(mode="json") for c in checks], indent=2)
            (out / source).write_text(redact(body), encoding="utf-8")
            attachments.append(
                {"name": f"{label} checks", "source": source, "type": "application/json"}
            )
        journal = f"{uuid.uuid4()}-attachment.txt"
        lines = [
            f"{st.started_at:%H:%M:%S.%f} {st.status:<7} {st.duration_s:8.3f}s {st.name}: "
            f"{st.detail}"
            for st in s.steps
        ]
        lines += [
            f"fault {f.fault_id} {f.kind}: reverted {f.revert_detail or 'no'}" for f in s.faults
        ]
        (out / journal).write_text(redact("\n".join(lines) + "\n"), encoding="utf-8")
        attachments.append({"name": "journal", "source": journal, "type": "text/plain"})
        message: str = s.failure_category or ""
        if s.findings:
            message = f"{message}: {'; '.join(s.findings)}" if message else "; ".join(s.findings)
        result = {
            "uuid": str(uuid.uuid4()),
            "historyId": _history_id(s),
            "testCaseId": hashlib.md5(f"{s.procedure}/{s.scenario_id}".encode()).hexdigest(),  # noqa: S324
            "name": s.scenario_id,
            "fullName": f"{s.procedure}.{s.scenario_id}",
            "description": s.title,
            "status": _status(s),
            "stage": "finished",
            "statusDetails": {"message": message} if message else {},
            "start": _ms(s.started_at),
            "stop": _ms(s.ended_at or s.started_at),
            "steps": [_step(step) for step in s.steps],
            "attachments": attachments,
            "labels": [
                *_objective_labels(s),
                {"name": "suite", "value": s.procedure},
                {"name": "feature", "value": s.component},
                {"name": "tag", "value": s.kind},
                {"name": "severity", "value": "critical" if s.kind == "scenario" else "normal"},
            ],
            "parameters": [
                *({"name": "fault", "value": f.kind} for f in s.faults),
                *_objective_parameters(s),
            ],
        }
        (out / f"{result['uuid']}-result.json").write_text(redact(json.dumps(result, indent=2)))
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    env_lines = [
        f"run_id={run.run_id}",
        f"environment={run.environment}",
        f"profile={run.profile_name}",
        f"profile_sha256={run.profile_sha256}",
        f"operator={run.operator}",
        *(f"runbook.{name}={digest}" for name, digest in run.runbooks.items()),
    ]
    (out / "environment.properties").write_text(redact("\n".join(env_lines) + "\n"))
    return out
