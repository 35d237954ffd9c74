"""The verification check of the offsets store: every committed offset as it was."""

from __future__ import annotations

from drtests.api import CheckResult, DatabaseTarget, Finding, run_check
from offsets_dr import store


def offsets_match(target: DatabaseTarget, baseline: store.Offsets) -> CheckResult:
    """Each partition's committed offset equals the baseline's; each difference is named."""

    def compare() -> list[Finding]:
        with target.connect() as conn:
            now = store.read(conn)
        findings = []
        for key in sorted(set(baseline) | set(now)):
            group, topic, partition = key
            where = f"{topic}/{partition} ({group})"
            if key not in now:
                findings.append(Finding("offsets_match", "error", where, "offset missing"))
            elif key not in baseline:
                findings.append(Finding("offsets_match", "info", where, "not in the baseline"))
            elif now[key] != baseline[key]:
                detail = f"committed {now[key]}, expected {baseline[key]}"
                findings.append(Finding("offsets_match", "error", where, detail))
        return findings

    return run_check("offsets_match", "committed offsets equal the baseline", compare)
