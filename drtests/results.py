"""Results of named checks, whatever they check: a check passes when it ran and reported no
error-severity finding; each finding names its subject."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    subject: str
    detail: str


class CheckNotRun(Exception):
    """A check that has nothing to compare with (no baseline): reported "not run", which is
    neither a pass nor a failure."""


@dataclass
class CheckResult:
    name: str
    description: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    #: why the check did not run; such a check neither passed nor failed
    not_run: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(f.severity == "error" for f in self.findings)


def run_check(
    name: str,
    description: str,
    run: Callable[[], Iterable[Finding]],
    errors: tuple[type[Exception], ...] = (Exception,),
) -> CheckResult:
    """A named check; when ``run`` raises one of ``errors``, the check fails with the first
    line of why (a check that cannot run is a failed check, not a crashed scenario)."""
    result = CheckResult(name, description)
    try:
        result.findings = list(run())
    except errors as exc:
        text = str(exc).strip()
        result.error = f"cannot run: {(text.splitlines()[0] if text else type(exc).__name__)[:300]}"
    return result


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
        if self.last_surviving_change is None:
            return (
                f"{self.lost_changes} committed changes lost; the restored data is "
                f"{self.rpo_seconds:.0f}s older than the fault"
            )
        return (
            f"{self.lost_changes} committed changes lost; newest surviving change "
            f"{self.rpo_seconds:.0f}s before the fault"
        )
