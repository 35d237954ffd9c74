"""Findings: what failed in a scenario, why, what to do, and who it escalates to.

The escalation levels are the Hive Metastore runbook's: Operations (initial diagnosis),
Data Engineering (complex issues), Infrastructure (infrastructure issues), Database Team
(database corruption).
"""

from __future__ import annotations

from drtests.evidence.model import FailureCategory, Finding, ScenarioRecord

ESCALATION: dict[FailureCategory, tuple[str, str, str]] = {
    # category: (level, reason, remediation)
    "fault not detected": (
        "Level 2: Data Engineering Team (#data-team)",
        "a detection query missed damage it is meant to report: a complex issue",
        "fix or add the detection check for this damage and re-run the scenario",
    ),
    "restore failed": (
        "Level 4: Database Team (#db-team-oncall)",
        "the metastore database could not be restored from backup: database corruption path",
        "check the backup chain (checksums, dump readability) and the restore step's error; "
        "take a fresh verified backup",
    ),
    "verification failed": (
        "Level 4: Database Team (#db-team-oncall)",
        "the restored metastore differs from the baseline or fails consistency checks",
        "compare the failing checks with the baseline; restore again or roll back from the "
        "safety snapshot",
    ),
    "objective missed": (
        "Level 1: Operations Team (#ops-team)",
        "the procedure worked but took longer, or lost more, than the objective allows",
        "profile the slow steps in the step table; raise backup frequency if RPO was missed",
    ),
    "negative control broken": (
        "Level 2: Data Engineering Team (#data-team)",
        "verification passed although nothing was restored: the suite cannot catch a broken "
        "DR process",
        "make the verification checks sensitive to this fault before trusting other results",
    ),
    "infrastructure error": (
        "Level 3: Infrastructure Team (#infra-team)",
        "an endpoint, server or workload needed by the scenario was not available",
        "check connectivity and credentials of the environment's endpoints, then re-run",
    ),
}


def categorize(record: ScenarioRecord) -> FailureCategory | None:
    """Why a scenario did not pass, from what its record shows; None when it passed."""
    if record.verdict in {"passed", "control-held", "dry-run"}:
        return None
    if record.kind == "negative-control":
        if record.verdict == "control-broken" and record.verification and record.verified:
            return "negative control broken"
        return "infrastructure error" if not record.faults else "negative control broken"
    if not record.faults:
        return "infrastructure error"
    missing = set(record.expected_detection) - set(record.detected_by)
    if missing or not record.detection:
        return "fault not detected"
    if any(step.status == "failed" for step in record.steps) or not record.restored:
        return "restore failed"
    if not record.verified:
        return "verification failed"
    return "objective missed"


def finding_for(record: ScenarioRecord, number: int) -> Finding | None:
    category = record.failure_category or categorize(record)
    if category is None:
        return None
    level, reason, remediation = ESCALATION[category]
    failed_steps = [
        f"step {s.name!r} failed: {s.detail}" for s in record.steps if s.status == "failed"
    ]
    missing = sorted(set(record.expected_detection) - set(record.detected_by))
    why_parts = [*failed_steps, *record.findings]
    if missing:
        why_parts.insert(0, f"not reported by {', '.join(missing)}")
    return Finding(
        finding_id=f"F-{number:03d}",
        scenario_id=record.scenario_id,
        category=category,
        what=f"{record.scenario_id}: {category}",
        why="; ".join(why_parts) or "see the scenario's checks",
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
