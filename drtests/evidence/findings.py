"""Findings: what failed in a scenario, why, what to do, and who it escalates to.

The category comes from the failure's real cause (a service that did not answer, a backup
that was rejected, a restore step's error, data that differs after the restore, an
objective missed), and with the component it decides the remediation and the runbook's
escalation level: Operations (initial diagnosis), Data Engineering (Airflow, MLflow, the
checks), Infrastructure (S3, workloads, endpoints), Database Team (the metastore database).
"""

from __future__ import annotations

import re

from drtests.evidence.model import FailureCategory, Finding, ScenarioRecord

OPERATIONS = "Level 1: Operations Team (#ops-team)"
DATA_ENGINEERING = "Level 2: Data Engineering Team (#data-team)"
INFRASTRUCTURE = "Level 3: Infrastructure Team (#infra-team)"
DATABASE_TEAM = "Level 4: Database Team (#db-team-oncall)"

#: who owns a component's data and service
OWNER = {
    "metastore": DATABASE_TEAM,
    "airflow": DATA_ENGINEERING,
    "mlflow": DATA_ENGINEERING,
    "objectstore": INFRASTRUCTURE,
    "s3": INFRASTRUCTURE,
    "platform": INFRASTRUCTURE,
}
#: what a component is called in a finding
NAMES = {
    "metastore": "the metastore database",
    "airflow": "Airflow's metadata database",
    "mlflow": "MLflow's backend store",
    "objectstore": "the S3 data",
    "s3": "the S3 archive",
    "platform": "the workloads",
}
#: the steps that choose and check a backup: failing there, the backup was rejected
BACKUP_STEPS = (
    "Identify last good backup",
    "Check backup metadata",
    "Download backup",
    "Verify checksum",
    "Restore backup into staging database",
    "Identify staged backup",
    "Select recovery point",
)
#: a service that did not answer (in time): unreachable, refused, timed out, not ready
UNAVAILABLE = re.compile(
    r"unreachable|timed out|timeout|connection refused|not ready|still running after|"
    r"no Ready pod|service unavailable|\b50[234]\b",
    re.IGNORECASE,
)


def categorize(record: ScenarioRecord) -> FailureCategory | None:
    """Why a scenario did not pass, from what its record shows; None when it passed."""
    if record.verdict in {"passed", "control-held", "dry-run"}:
        return None
    if record.kind == "negative-control":
        if record.verdict == "control-broken" and record.verification and record.verified:
            return "negative control broken"
        return "infrastructure error" if not record.faults else "negative control broken"
    failed_steps = [s for s in record.steps if s.status == "failed"]
    text = " ".join([*(s.detail or "" for s in failed_steps), *record.findings])
    if not record.faults:
        return "service unavailable" if UNAVAILABLE.search(text) else "infrastructure error"
    missing = set(record.expected_detection) - set(record.detected_by)
    if missing or not record.detection:
        return "fault not detected"
    if failed_steps or not record.restored:
        if UNAVAILABLE.search(text):
            return "service unavailable"
        if any(s.name in BACKUP_STEPS for s in failed_steps) or "no verified backup" in text:
            return "backup rejected"
        return "restore error"
    if not record.verified:
        errors = " ".join(c.error or "" for c in record.verification)
        return "service unavailable" if UNAVAILABLE.search(errors) else "verification mismatch"
    return "objective missed"


def escalation(category: FailureCategory, component: str) -> tuple[str, str, str]:
    """(level, reason, remediation) of a category for a component."""
    owner = OWNER.get(component, OPERATIONS)
    what = NAMES.get(component, component)
    if category == "service unavailable":
        return (
            owner if component in ("airflow", "mlflow") else INFRASTRUCTURE,
            f"a service {what} depends on did not answer in time: slow or down, not damaged",
            "check the service's pods, endpoint and load (the failed step names it); "
            "re-run the scenario once it answers",
        )
    if category == "backup rejected":
        return (
            owner,
            f"no backup of {what} passed its checks (checksums, readability, identity)",
            "check the backup chain: the rejected backups and why (the step table), the "
            "backup job's last runs; take a fresh verified backup",
        )
    if category in ("restore error", "restore failed"):
        return (
            owner,
            f"{what} could not be restored from a verified backup",
            "read the failed step's error; restore again, or roll back from the safety snapshot",
        )
    if category in ("verification mismatch", "verification failed"):
        return (
            owner,
            f"{what} differs from the baseline after the restore, or fails its checks",
            "compare the failing checks with the baseline; restore again or roll back from "
            "the safety snapshot",
        )
    if category == "fault not detected":
        return (
            DATA_ENGINEERING,
            "a detection check missed damage it is meant to report",
            "fix or add the detection check for this damage and re-run the scenario",
        )
    if category == "negative control broken":
        return (
            DATA_ENGINEERING,
            "verification passed although nothing was restored: the suite cannot catch a "
            "broken DR process",
            "make the verification checks sensitive to this fault before trusting other results",
        )
    if category == "objective missed":
        return (
            OPERATIONS,
            "the procedure worked but took longer, or lost more, than the objective allows",
            "profile the slow steps in the step table; raise backup frequency if RPO was missed",
        )
    return (
        INFRASTRUCTURE,
        "an endpoint, server or workload needed by the scenario was not available",
        "check connectivity and credentials of the environment's endpoints, then re-run",
    )


def _why(record: ScenarioRecord) -> str:
    """Each cause once: a test's failure message repeats its step's error (often with the
    exception's class in front), and is left out when it does."""
    parts = [f"step {s.name!r} failed: {s.detail}" for s in record.steps if s.status == "failed"]
    details = [s.detail for s in record.steps if s.status == "failed" and s.detail]
    for text in record.findings:
        if not any(d in text for d in details) and text not in parts:
            parts.append(text)
    missing = sorted(set(record.expected_detection) - set(record.detected_by))
    if missing:
        parts.insert(0, f"not reported by {', '.join(missing)}")
    return "; ".join(parts) or "see the scenario's checks"


def finding_for(record: ScenarioRecord, number: int) -> Finding | None:
    category = record.failure_category or categorize(record)
    if category is None:
        return None
    level, reason, remediation = escalation(category, record.component)
    return Finding(
        finding_id=f"F-{number:03d}",
        scenario_id=record.scenario_id,
        category=category,
        what=f"{record.scenario_id}: {category}",
        why=_why(record),
        remediation=remediation,
        escalation=level,
        escalation_reason=reason,
    )


def findings_for(records: list[ScenarioRecord]) -> list[Finding]:
    found: list[Finding] = []
    for record in records:
        finding = finding_for(record, len(found) + 1)
        if finding is not None:
            found.append(finding)
    return found
