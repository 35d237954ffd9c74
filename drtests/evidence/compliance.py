"""Which evidence of a run answers which clause auditors ask about."""

from __future__ import annotations

from collections.abc import Callable

from drtests.evidence.model import (
    Checklist,
    ClauseResult,
    ClauseStatus,
    ObjectiveResult,
    ScenarioRecord,
)

Evaluator = Callable[[list[ScenarioRecord], list[Checklist]], tuple[ClauseStatus, list[str]]]


def _restores(records: list[ScenarioRecord]) -> list[ScenarioRecord]:
    return [r for r in records if r.kind == "scenario" and r.verdict != "dry-run"]


def _restore_tests(
    records: list[ScenarioRecord], _: list[Checklist]
) -> tuple[ClauseStatus, list[str]]:
    restores = _restores(records)
    if not restores:
        return "not covered", ["no restore scenario ran"]
    ok = all(r.verdict == "passed" for r in restores)
    return ("met" if ok else "not met"), [f"{r.scenario_id}: {r.verdict}" for r in restores]


def _objectives(
    records: list[ScenarioRecord], _: list[Checklist]
) -> tuple[ClauseStatus, list[str]]:
    restores = [r for r in _restores(records) if r.rto is not None and r.rpo is not None]
    if not restores:
        return "not covered", ["no objective measured"]
    evidence = [
        f"{r.scenario_id}: RTO {_achieved(r.rto)} of {r.rto.objective_s:.0f}s, "
        f"RPO {_achieved(r.rpo)} of {r.rpo.objective_s:.0f}s"
        for r in restores
        if r.rto is not None and r.rpo is not None
    ]
    ok = all(r.rto is not None and r.rto.met and r.rpo is not None and r.rpo.met for r in restores)
    return ("met" if ok else "not met"), evidence


def _achieved(result: ObjectiveResult) -> str:
    """An achieved value, or why there is none (a scenario that failed before it)."""
    return "not reached" if result.achieved_s is None else f"{result.achieved_s:.1f}s"


def _restore_testing(
    records: list[ScenarioRecord], _: list[Checklist]
) -> tuple[ClauseStatus, list[str]]:
    """Restore tests of the backups themselves (``drtests restore-test``): restored into a
    scratch target, the application run on them, duration and data age measured."""
    tests = [r for r in _restores(records) if r.procedure.startswith("restore_test_")]
    if not tests:
        return "not covered", ["no restore test of the backups ran"]
    evidence = []
    for r in tests:
        rto = (
            f"{r.rto.achieved_s:.0f}s of {r.rto.objective_s:.0f}s"
            if r.rto and r.rto.achieved_s is not None
            else "not restored"
        )
        age = (
            f"{r.rpo.achieved_s:.0f}s of {r.rpo.objective_s:.0f}s"
            if r.rpo and r.rpo.achieved_s is not None
            else "unknown"
        )
        evidence.append(
            f"{r.component}: {r.backup or 'no backup restored'} ({r.verdict}; "
            f"restore and test {rto}; data age {age})"
        )
    ok = all(r.verdict == "passed" for r in tests)
    return ("met" if ok else "not met"), evidence


def _backups(
    records: list[ScenarioRecord], checklists: list[Checklist]
) -> tuple[ClauseStatus, list[str]]:
    tested = _restore_testing(records, checklists)
    if tested[0] != "not covered":
        return tested
    items = {i.item: i for c in checklists for i in c.items}
    verified = items.get("Backup identified and verified")
    integrity = items.get("Data integrity verified (checksums)")
    if verified is None or verified.status == "not-run":
        return "not covered", ["no backup was restored"]
    backups = sorted({r.backup for r in _restores(records) if r.backup})
    ok = verified.status == "passed" and integrity is not None and integrity.status == "passed"
    return ("met" if ok else "not met"), [f"restored and verified: {b}" for b in backups]


def _exercise(records: list[ScenarioRecord], _: list[Checklist]) -> tuple[ClauseStatus, list[str]]:
    controls = [r for r in records if r.kind == "negative-control" and r.verdict != "dry-run"]
    restores = _restores(records)
    if not restores:
        return "not covered", ["no scenario exercised"]
    if not controls and all(r.procedure.startswith("restore_test_") for r in restores):
        return "not covered", ["a restore test of the backups, not an exercise of the plan"]
    held = all(r.verdict == "control-held" for r in controls)
    evidence = [
        f"{len(restores)} scenarios exercised, {len(controls)} negative controls "
        f"({'all held' if held else 'some broken'}); findings recorded with escalation"
    ]
    return ("met" if controls and held else "not met"), evidence


#: what each evaluator asks of the evidence, written out in every report
CRITERIA: dict[Evaluator, str] = {
    _restore_tests: "every restore scenario ran to the end: restored, verified and within "
    "its objectives",
    _objectives: "every restore scenario's achieved RTO and RPO within the profile's objectives",
    _backups: "a backup restored, its checksums verified and the restored data verified "
    "(by a restore test of the real backups where one ran)",
    _exercise: "scenario-based exercise with findings and escalation, and every negative "
    "control held (the verification can fail)",
    _restore_testing: "the real backups restored into a scratch server apart from the "
    "source, the application run on them, duration and data age within the objectives",
}

CLAUSES: list[tuple[str, str, str, Evaluator]] = [
    (
        "SOC 2",
        "A1.3",
        "Recovery plan procedures supporting system recovery are tested",
        _restore_tests,
    ),
    (
        "ISO/IEC 27001:2022",
        "A.5.30",
        "ICT readiness for business continuity is planned and tested against recovery objectives",
        _objectives,
    ),
    ("ISO/IEC 27001:2022", "A.8.13", "Backup copies are maintained and regularly tested", _backups),
    (
        "ISO 22301:2019",
        "8.5",
        "Exercise programme: scenario-based exercises with a post-exercise report and findings",
        _exercise,
    ),
    (
        "DORA",
        "Art. 11",
        "Response and recovery: ICT business continuity plans are tested",
        _restore_tests,
    ),
    (
        "DORA",
        "Art. 12",
        "Backup policies, restoration and recovery procedures; RTO/RPO",
        _objectives,
    ),
    (
        "DORA",
        "Art. 12(2)",
        "Backups are restored and tested periodically, on systems apart from the source",
        _restore_testing,
    ),
    (
        "DORA",
        "Art. 24",
        "Digital operational resilience testing programme performed, "
        "issues classified and remediated",
        _exercise,
    ),
    ("DORA", "Art. 25", "Testing of ICT tools and systems: scenario-based tests", _restore_tests),
    (
        "PCI DSS v4.0",
        "12.10.2",
        "The incident response plan is tested at least every 12 months",
        _restore_tests,
    ),
]

#: environments whose data the run created (seeded test data, not the production system)
TEST_ENVIRONMENTS = ("local", "containers")


def scope_of(environment: str, profile: str = "") -> str:
    """What a run's evidence is evidence of."""
    if environment in TEST_ENVIRONMENTS:
        return (
            f"procedure validated on test data ({environment} environment created by the "
            "run) — not evidence of the production control"
        )
    named = f" of profile {profile}" if profile else ""
    return f"the live, allow-listed targets{named} (see targets.txt)"


def map_clauses(
    records: list[ScenarioRecord],
    checklists: list[Checklist],
    environment: str = "live",
    profile: str = "",
) -> list[ClauseResult]:
    """Each clause with its status, criteria and scope: "met" only on live targets; the
    same evidence from an environment the run created reads "validated on test data"."""
    scope = scope_of(environment, profile)
    results = []
    for framework, clause, requirement, evaluate in CLAUSES:
        status, evidence = evaluate(records, checklists)
        if status == "met" and environment in TEST_ENVIRONMENTS:
            status = "validated on test data"
        results.append(
            ClauseResult(
                framework=framework,
                clause=clause,
                requirement=requirement,
                evidence=evidence,
                status=status,
                criteria=CRITERIA[evaluate],
                scope=scope,
            )
        )
    return results
