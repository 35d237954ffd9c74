"""Which recovery point a restore test tries, as AWS Backup's restore testing chooses one:
the newest within a window, or a random one within it. A random choice is seeded, and the
seed is recorded, so that the same night can be tested again."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar


class RecoveryPoint(Protocol):
    @property
    def taken_at(self) -> datetime: ...


Point = TypeVar("Point", bound=RecoveryPoint)


@dataclass(frozen=True)
class Selection:
    mode: Literal["latest", "random"]
    window: timedelta
    seed: int

    def describe(self) -> str:
        """How the point was chosen, with the seed of the choice (random) and of the
        samples taken from the restored copy (always): what repeats the night."""
        return f"{self.mode} within {_window(self.window)}, seed {self.seed}"

    def order(self, points: Sequence[Point], now: datetime, component: str) -> list[Point]:
        """The points to try, first choice first, then the older ones in the window as
        fallbacks (a corrupt choice is a finding, and the next one shows whether any
        recovery point in the window would restore). Empty when none is in the window."""
        in_window = sorted(
            (p for p in points if now - self.window <= p.taken_at <= now),
            key=lambda p: p.taken_at,
            reverse=True,
        )
        if self.mode == "latest" or not in_window:
            return in_window
        # one generator per component: adding a component does not change another's choice
        chosen = random.Random(f"{self.seed}:{component}").choice(in_window)
        return [chosen, *(p for p in in_window if p.taken_at < chosen.taken_at)]


def _window(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
