"""How patient the run had to be: requests that were slow or had to be sent again.

A slow platform should be visible in the evidence without being a failure: every step
records how many of its requests took longer than SLOW_S and how many were retried after a
transient failure (see ``drtests.http.retry_transient``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: an attempt that takes longer than this, or times out, is counted as slow
SLOW_S = 2.0


@dataclass(frozen=True)
class Tally:
    slow: int = 0
    retried: int = 0

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.slow - other.slow, self.retried - other.retried)


_lock = threading.Lock()
_slow = 0
_retried = 0


def record(*, slow: bool = False, retried: bool = False) -> None:
    global _slow, _retried
    with _lock:
        _slow += int(slow)
        _retried += int(retried)


def tally() -> Tally:
    """The run's counts so far; a step's are the difference across it."""
    with _lock:
        return Tally(_slow, _retried)
