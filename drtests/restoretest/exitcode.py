"""The restore test's exit code, for a scheduler (a CronJob, a CI job): 0 every tested
backup restored and served, 1 a finding, 2 the test could not run. Read from pytest's
own JUnit report: a failed test is a finding; an error in set-up (scratch server
unreachable, a source refused) or nothing tested at all is a run that could not run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

ALL_RESTORABLE, FINDING, COULD_NOT_RUN = 0, 1, 2


def exit_code(pytest_code: int, junit: Path) -> tuple[int, str]:
    """The code and one line saying why."""
    if pytest_code not in (0, 1):
        return COULD_NOT_RUN, f"the restore test could not run (pytest exit code {pytest_code})"
    try:
        root = ET.parse(junit).getroot()  # noqa: S314
    except (OSError, ET.ParseError) as exc:
        return COULD_NOT_RUN, f"no test report ({exc})"
    tests = failures = errors = skipped = 0
    for suite in root.iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    if failures:
        return FINDING, f"{failures} of {tests} restore tests found a problem"
    if errors:
        return COULD_NOT_RUN, f"{errors} of {tests} restore tests could not run"
    if tests - skipped == 0:
        return COULD_NOT_RUN, "no component was tested (every one skipped)"
    return ALL_RESTORABLE, f"{tests - skipped} restore tests passed"
