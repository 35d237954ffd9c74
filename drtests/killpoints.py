"""Deterministic interruption for the tests of what a kill leaves behind: with
``DRTESTS_KILL_AT=NAME`` in the environment, the run sends itself SIGKILL when it reaches
the named point (no timing luck). Unset, a kill point costs one dictionary lookup."""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "DRTESTS_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
