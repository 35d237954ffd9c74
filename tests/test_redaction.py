"""Secrets never reach logs or evidence."""

from __future__ import annotations

from pathlib import Path

from drtests.evidence.model import ScenarioRecord
from drtests.evidence.store import write_scenario
from drtests.ledger import utcnow
from drtests.redaction import Redactor


def test_uri_passwords_and_known_secrets_are_masked() -> None:
    redact = Redactor(["very-secret-key"])
    text = redact("connect postgresql://hive:pw123@db:5432/m failed; key=very-secret-key")
    assert "pw123" not in text and "very-secret-key" not in text
    assert "postgresql://hive:***@db:5432/m" in text


def test_planted_secret_does_not_reach_scenario_evidence(tmp_path: Path) -> None:
    planted = "planted-Secret-42"
    record = ScenarioRecord(
        scenario_id="s", title="t", procedure="p", component="c", started_at=utcnow()
    )
    record.findings.append(f"restore failed: password authentication for {planted}")
    path = write_scenario(tmp_path, record, Redactor([planted]))
    assert planted not in path.read_text()
