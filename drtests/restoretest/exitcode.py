"""The restore test's exit code, for a scheduler (a CronJob, a CI job): 0 every tested
backup restored and served, 1 a finding, 2 the test could not run. Read from pytest's
own JUnit report: a failed test is a finding; an error in set-up (scratch server
unreachable, a source refused) or nothing tested at all is a run that could not run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

ALL_RESTORABLE, FINDING, COULD_NOT_RUN = 0, 1, 2


#: the JUnit property a restore test carries when it failed because it could not run (a
#: source or the scratch server unreachable), not because a backup was bad
COULD_NOT_RUN_PROPERTY = "restore_test_could_not_run"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def exit_code(pytest_code: int, junit: Path) -> tuple[int, str]:
    """The code and one line saying why."""
    if pytest_code not in (0, 1):
        return COULD_NOT_RUN, f"the restore test could not run (pytest exit code {pytest_code})"
    try:
        root = ET.parse(junit).getroot()  # noqa: S314
    except (OSError, ET.ParseError) as exc:
        return COULD_NOT_RUN, f"no test report ({exc})"
    ran = findings = could_not_run = 0
    for case in root.iter("testcase"):
        if case.find("skipped") is not None:
            continue
        ran += 1
        if case.find("error") is not None:
            could_not_run += 1
        elif case.find("failure") is not None:
            names = {p.get("name") for p in case.iter("property")}
            if COULD_NOT_RUN_PROPERTY in names:
                could_not_run += 1
            else:
                findings += 1
    if findings:
        return FINDING, f"{findings} of {_plural(ran, 'restore test')} found a problem"
    if could_not_run:
        return COULD_NOT_RUN, f"{could_not_run} of {_plural(ran, 'restore test')} could not run"
    if ran == 0:
        return COULD_NOT_RUN, "no component was tested (every one skipped)"
    return ALL_RESTORABLE, f"{_plural(ran, 'restore test')} passed"
