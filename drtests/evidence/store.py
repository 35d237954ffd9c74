"""Where a run's evidence lives: ``<report-dir>/<run-id>/``; each scenario writes its own
record (workers run in parallel), the controller assembles the run document."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from drtests.evidence.model import RunRecord, ScenarioRecord
from drtests.redaction import Redactor

RUNBOOK_DIR_CANDIDATES = ("../shared/seeds", "shared/seeds")


def scenario_path(run_dir: Path, scenario_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario_id).strip("_")
    return run_dir / "scenarios" / f"{safe}.json"


def write_scenario(run_dir: Path, record: ScenarioRecord, redact: Redactor) -> Path:
    path = scenario_path(run_dir, record.scenario_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact(record.model_dump_json(indent=2)), encoding="utf-8")
    return path


def read_scenarios(run_dir: Path) -> list[ScenarioRecord]:
    folder = run_dir / "scenarios"
    if not folder.is_dir():
        return []
    records = [
        ScenarioRecord.model_validate_json(p.read_text()) for p in sorted(folder.glob("*.json"))
    ]
    return sorted(records, key=lambda r: (r.kind != "scenario", r.scenario_id))


def write_run(run_dir: Path, run: RunRecord, redact: Redactor) -> Path:
    path = run_dir / "run.json"
    path.write_text(redact(run.model_dump_json(indent=2)), encoding="utf-8")
    return path


def runbook_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of each runbook the suite encodes, as found beside the checkout."""
    for candidate in RUNBOOK_DIR_CANDIDATES:
        folder = (root / candidate).resolve()
        if folder.is_dir():
            return {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.glob("*.txt"))
            }
    return {}
