"""The evidence document: a versioned JSON model that every report is rendered from."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "1.1"

StepStatus = Literal["passed", "failed", "skipped", "planned"]
Verdict = Literal["passed", "failed", "control-held", "control-broken", "dry-run", "error"]
ChecklistStatus = Literal["passed", "failed", "attested", "not-attested", "not-run", "n/a"]
FailureCategory = Literal[
    "fault not detected",
    "service unavailable",
    "backup rejected",
    "restore error",
    "verification mismatch",
    "objective missed",
    "negative control broken",
    "infrastructure error",
    # written by earlier versions, still read
    "restore failed",
    "verification failed",
]


class StepRecord(BaseModel):
    name: str
    runbook_step: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float = 0.0
    status: StepStatus = "passed"
    detail: str = ""
    #: requests of this step slower than drtests.patience.SLOW_S, and ones sent again
    slow_requests: int = 0
    retried_requests: int = 0


class FindingRecord(BaseModel):
    severity: str
    subject: str
    detail: str


class CheckRecord(BaseModel):
    name: str
    ok: bool
    error: str | None = None
    findings: list[FindingRecord] = Field(default_factory=list)
    findings_total: int = 0


class FaultRecord(BaseModel):
    fault_id: str
    kind: str
    description: str
    injected_at: datetime
    reverted_at: datetime | None = None
    revert_detail: str = ""


class ObjectiveResult(BaseModel):
    objective_s: float
    achieved_s: float | None = None
    met: bool | None = None
    detail: str = ""


class ScenarioRecord(BaseModel):
    scenario_id: str
    title: str
    procedure: str
    component: str
    kind: Literal["scenario", "negative-control"] = "scenario"
    runbook: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    faults: list[FaultRecord] = Field(default_factory=list)
    detection: list[CheckRecord] = Field(default_factory=list)
    detected_by: list[str] = Field(default_factory=list)
    expected_detection: list[str] = Field(default_factory=list)
    backup: str | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    restored: bool = False
    verification: list[CheckRecord] = Field(default_factory=list)
    verified: bool = False
    rto: ObjectiveResult | None = None
    rpo: ObjectiveResult | None = None
    verdict: Verdict = "error"
    findings: list[str] = Field(default_factory=list)
    failure_category: FailureCategory | None = None


class Participant(BaseModel):
    name: str
    role: str


class Attestation(BaseModel):
    item: str
    by: str
    role: str = ""
    at: datetime | None = None
    note: str = ""


class ChecklistItem(BaseModel):
    item: str
    status: ChecklistStatus
    evidence: list[str] = Field(default_factory=list)
    attested_by: str | None = None


class Checklist(BaseModel):
    name: str
    source: str
    items: list[ChecklistItem] = Field(default_factory=list)


class Finding(BaseModel):
    finding_id: str
    scenario_id: str
    category: FailureCategory
    what: str
    why: str
    remediation: str
    escalation: str
    escalation_reason: str
    follow_up: str = "open"
    follow_up_by: str | None = None


#: "met" only on live targets; a run on an environment it created proves the procedure on
#: test data, not the production control ("validated on test data")
ClauseStatus = Literal["met", "validated on test data", "not met", "not covered"]


class ClauseResult(BaseModel):
    framework: str
    clause: str
    requirement: str
    evidence: list[str] = Field(default_factory=list)
    status: ClauseStatus = "not covered"
    #: what the evidence must show for the clause to be met
    criteria: str = ""
    #: what this run's evidence is evidence of: which environment, which data
    scope: str = ""


class RunRecord(BaseModel):
    schema_version: str = SCHEMA_VERSION
    run_id: str
    started_at: datetime
    ended_at: datetime | None = None
    operator: str
    environment: str
    targets: list[str] = Field(default_factory=list)
    profile_name: str
    profile_sha256: str
    runbooks: dict[str, str] = Field(default_factory=dict)
    dry_run: bool = False
    #: load mode (``--dr-load``): the busy processes and network delay the run was under
    load: str = ""
    #: what the run was: a "game day" of the procedures, or a "restore test" of the backups
    kind: str = "game day"
    scope: str = ""
    participants: list[Participant] = Field(default_factory=list)
    scenarios: list[ScenarioRecord] = Field(default_factory=list)
    checklists: list[Checklist] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    clauses: list[ClauseResult] = Field(default_factory=list)

    @property
    def nothing_found(self) -> str:
        """What the findings section says when it is empty."""
        if self.dry_run:
            return "None: a dry run restores nothing; what it would have done is in plan.txt."
        if self.kind == "restore test":
            return "None: every tested backup restored and served within its objectives."
        return "None: every scenario met its objectives and every negative control held."

    @property
    def outcome(self) -> str:
        """The run's headline: a dry run neither passed nor failed."""
        if self.dry_run:
            return "DRY RUN"
        return "PASSED" if self.passed else "FAILED"

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(
            s.verdict in {"passed", "control-held"} for s in self.scenarios
        )
