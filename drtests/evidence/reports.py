"""The ``drtests report`` commands: verify a run folder, re-render it, draw trends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from drtests.errors import DRError
from drtests.evidence.assemble import write_reports
from drtests.evidence.history import find_runs, rto_series, trend_svg
from drtests.evidence.manifest import (
    MANIFEST,
    SIGNATURES,
    Problem,
    recorded_evidence_head,
    recorded_head,
    verify_manifest,
)
from drtests.evidence.model import RunRecord
from drtests.evidence.signing import (
    check_pdf_names_its_evidence,
    load_trust,
    verify_signatures,
)
from drtests.ledger import utcnow
from drtests.redaction import Redactor


def verify_folder(
    folders: list[Path], expected_head: str | None = None, trust: Path | None = None
) -> int:
    """Name every modified, added or removed file, a PDF naming other evidence, and any
    signature that does not verify; print each folder's heads; exit 1 if any folder fails."""
    if expected_head is not None:
        expected_head = expected_head.strip().lower()
        if len(expected_head) != 64 or any(c not in "0123456789abcdef" for c in expected_head):
            raise DRError(f"--head {expected_head!r}: not a SHA-256 (64 hexadecimal digits)")
    anchors = load_trust(trust) if trust is not None else None
    status = 0
    for folder in folders:
        if not folder.is_dir():
            raise DRError(f"{folder}: not a run folder (no such directory)")
        file_problems = verify_manifest(folder, expected_head)
        file_problems += check_pdf_names_its_evidence(folder)
        signature_problems, notes = verify_signatures(folder, anchors)
        if anchors is not None and not (folder / SIGNATURES).is_dir():
            signature_problems.append(
                Problem("signature-missing", f"{SIGNATURES}/", "--trust given: not signed")
            )
        for problem in file_problems + signature_problems:
            print(f"{folder}: {problem}")
        if file_problems or signature_problems:
            status = 1
        if not file_problems:
            print(f"{folder}: intact ({MANIFEST} verified)")
        for note in notes:  # each says what did check out
            print(f"{folder}: {note}")
        # with damaged files, the heads printed are the recorded ones, not the folder's
        recorded = " recorded" if file_problems else ""
        stale = " (the files no longer match it)" if file_problems else ""
        print(f"{folder}: manifest head{recorded} {recorded_head(folder) or '(none)'}{stale}")
        if evidence := recorded_evidence_head(folder):
            print(
                f"{folder}: evidence head{recorded} {evidence} (in report.pdf's footer: every "
                f"file but it){stale}"
            )
    return status


def refuse_if_signed(folder: Path, action: str) -> None:
    """Re-rendering changes the PDF and the head: signatures on the old ones would stop
    verifying, silently, unless the signer moves them aside on purpose."""
    if (folder / SIGNATURES).is_dir():
        raise DRError(
            f"{folder}: is signed; {action} would invalidate {SIGNATURES}/: move it out of "
            "the folder first (it stays the signature of the evidence as it was), then sign "
            "again"
        )


SOURCES = ("run.json", "scenarios/", "targets.txt", "plan.txt", "follow-ups.jsonl")


def _derived_change(problem: Problem) -> bool:
    return problem.kind in {"modified", "removed"} and not problem.path.startswith(SOURCES)


def rerender(folder: Path) -> str:
    """Every format again from run.json, which must still match its manifest."""
    document = folder / "run.json"
    if not document.exists():
        raise DRError(f"{folder}: no run.json")
    refuse_if_signed(folder, "re-rendering")
    if not (folder / MANIFEST).exists():
        raise DRError(
            f"{folder}: no {MANIFEST}: run.json cannot be checked against it, and re-rendering "
            "would adopt whatever it now says"
        )
    # only derived files may differ: the sources and the chain must be intact, and nothing
    # foreign may be adopted into the new manifest
    tampered = [p for p in verify_manifest(folder) if not _derived_change(p)]
    if tampered:
        raise DRError(f"{folder}: refusing to re-render: {tampered[0]}")
    run = RunRecord.model_validate_json(document.read_text(encoding="utf-8"))
    shutil.rmtree(folder / "allure-results", ignore_errors=True)
    return write_reports(folder, run, Redactor())


FOLLOW_UP_STATES = ("open", "in-progress", "closed", "risk-accepted")


def follow_up(folder: Path, finding_id: str, status: str, by: str, note: str) -> str:
    """Record a finding's follow-up: run.json is updated, the change appended to
    follow-ups.jsonl, every report re-rendered and the manifest re-chained."""
    if status not in FOLLOW_UP_STATES:
        raise DRError(f"follow-up status must be one of {', '.join(FOLLOW_UP_STATES)}")
    document = folder / "run.json"
    if not document.exists():
        raise DRError(f"{folder}: no run.json")
    refuse_if_signed(folder, "recording a follow-up")
    problems = verify_manifest(folder)  # a missing manifest is a problem too
    if problems:
        raise DRError(
            f"{folder}: refusing to update evidence that fails verification: {problems[0]}"
        )
    run = RunRecord.model_validate_json(document.read_text(encoding="utf-8"))
    finding = next((f for f in run.findings if f.finding_id == finding_id), None)
    if finding is None:
        known = ", ".join(f.finding_id for f in run.findings) or "none"
        raise DRError(f"{folder}: no finding {finding_id} (findings: {known})")
    finding.follow_up, finding.follow_up_by = status, by
    entry = {
        "at": utcnow().isoformat(),
        "finding": finding_id,
        "status": status,
        "by": by,
        "note": note,
    }
    with (folder / "follow-ups.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    shutil.rmtree(folder / "allure-results", ignore_errors=True)
    return write_reports(folder, run, Redactor())


def history_report(folders: list[Path], out: Path) -> int:
    runs = find_runs(folders)
    if not runs:
        raise DRError("no run.json found in " + ", ".join(str(f) for f in folders))
    procedures = sorted({p for r in runs for p in rto_series(r)})
    print(f"{'run':<30} {'date':<17} {'verdict':<8} " + " ".join(f"{p:>20}" for p in procedures))
    for run in runs:
        series = rto_series(run)
        cells = " ".join(
            f"{series[p]:>19.1f}s" if p in series else f"{'—':>20}" for p in procedures
        )
        verdict = run.outcome
        print(f"{run.run_id:<30} {run.started_at:%Y-%m-%d %H:%M} {verdict:<8} {cells}")
    env = Environment(
        loader=PackageLoader("drtests.evidence", "templates"), autoescape=select_autoescape(["j2"])
    )
    page = env.get_template("trend.html.j2").render(
        runs=runs, chart=trend_svg(runs), age_chart=trend_svg(runs, "rpo")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(Redactor()(page), encoding="utf-8")
    print(f"trend of {len(runs)} runs: {out}")
    return 0
