"""From scenario records to the run document, and from the run document to every report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from drtests.config import Profile
from drtests.evidence.allure import write_allure
from drtests.evidence.checklists import attestations_of, build_checklists
from drtests.evidence.compliance import map_clauses
from drtests.evidence.findings import categorize, findings_for
from drtests.evidence.history import find_runs
from drtests.evidence.junit import write_junit
from drtests.evidence.manifest import evidence_head, write_manifest
from drtests.evidence.model import Attestation, Participant, RunRecord, ScenarioRecord
from drtests.evidence.pdf import write_pdf
from drtests.evidence.render import write_html, write_markdown
from drtests.evidence.store import write_run
from drtests.redaction import Redactor


def assemble_run(
    *,
    run_id: str,
    started_at: datetime,
    ended_at: datetime,
    operator: str,
    profile: Profile,
    targets: list[str],
    runbooks: dict[str, str],
    dry_run: bool,
    scenarios: list[ScenarioRecord],
    participants: list[Participant],
    attestations: list[Attestation],
    load: str = "",
) -> RunRecord:
    for record in scenarios:
        record.failure_category = categorize(record)
    people = [Participant(name=p.name, role=p.role) for p in profile.participants] + participants
    if not any(p.name == operator for p in people):
        people.insert(0, Participant(name=operator, role="Operator"))
    restore_test = bool(scenarios) and all(
        r.procedure.startswith("restore_test_") for r in scenarios
    )
    # the runbooks' restore checklists are a game day's; a restore test of the backups
    # answers to its own checks and to the backup clauses
    checklists = (
        []
        if restore_test
        else build_checklists(
            scenarios, attestations_of(profile, attestations), profile.safety.production
        )
    )
    return RunRecord(
        run_id=run_id,
        started_at=started_at,
        ended_at=ended_at,
        operator=operator,
        environment=profile.environment,
        targets=targets,
        profile_name=profile.name,
        profile_sha256=profile.fingerprint(),
        runbooks=runbooks,
        dry_run=dry_run,
        load=load,
        kind="restore test" if restore_test else "game day",
        scope=profile.scope,
        participants=people,
        scenarios=scenarios,
        checklists=checklists,
        findings=findings_for(scenarios),
        clauses=map_clauses(scenarios, checklists, profile.environment, profile.name),
    )


def earlier_runs(run_dir: Path, run: RunRecord, limit: int = 20) -> list[RunRecord]:
    """Runs beside this one in the same reports folder, oldest first, for the trend."""
    try:
        runs = find_runs([run_dir.parent])
    except Exception:  # a foreign or broken folder beside ours must not stop the report
        return []
    return [r for r in runs if r.run_id != run.run_id and r.started_at < run.started_at][-limit:]


def write_reports(run_dir: Path, run: RunRecord, redact: Redactor) -> str:
    """Every format from the one document, then the manifest; returns its head."""
    earlier = earlier_runs(run_dir, run)
    history = [*earlier, run]
    write_run(run_dir, run, redact)
    write_html(run_dir, run, redact, history)
    write_markdown(run_dir, run, redact)
    write_junit(run_dir, run, redact)
    write_allure(run_dir, run, redact, earlier)
    write_pdf(run_dir, run, redact, evidence_head(run_dir))  # names the files above: last
    return write_manifest(run_dir)
