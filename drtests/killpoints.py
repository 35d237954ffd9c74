"""Interruptions: a deterministic self-kill for the tests of what a kill leaves behind
(with ``DRTESTS_KILL_AT=NAME`` the run sends itself SIGKILL at the named point, no timing
luck; unset, a kill point costs one dictionary lookup), and Ctrl-C held while faults are
reverted."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

KILL_AT_ENV = "DRTESTS_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def interrupts_deferred(what: str) -> Iterator[None]:
    """Ctrl-C while ``what`` runs (the revert of injected faults) is held until it is done,
    then raised: a second Ctrl-C during teardown cannot leave a fault half reverted, and the
    ledger keeps whatever is still pending. Only the main thread receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        sys.stderr.write(f"\ndrtests: interrupt received; finishing {what} first\n")

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
