"""Results of named checks, whatever they check: a check passes when it ran and reported no
error-severity finding; each finding names its subject."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    subject: str
    detail: str


@dataclass
class CheckResult:
    name: str
    description: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(f.severity == "error" for f in self.findings)


def failed(results: Iterable[CheckResult]) -> list[str]:
    return [r.name for r in results if not r.ok]


@dataclass(frozen=True)
class RpoMeasurement:
    lost_changes: int
    last_surviving_change: int | None
    rpo_seconds: float

    def describe(self) -> str:
        if not self.lost_changes:
            return "no committed change lost"
        return (
            f"{self.lost_changes} committed changes lost; newest surviving change "
            f"{self.rpo_seconds:.0f}s before the fault"
        )
