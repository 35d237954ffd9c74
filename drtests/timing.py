"""Where a run's time goes: each test's set-up, call and teardown, by worker, so that the
game day can end with its slowest scenarios and what set-up costs on each worker."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TestTimes:
    worker: str
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.phases.values())


@dataclass
class RunTimes:
    tests: dict[str, TestTimes] = field(default_factory=dict)

    def record(self, report: Any) -> None:
        node = getattr(report, "node", None)
        gateway = getattr(node, "gateway", None)
        worker = str(getattr(gateway, "id", None) or "main")
        times = self.tests.setdefault(report.nodeid, TestTimes(worker))
        times.phases[report.when] = times.phases.get(report.when, 0.0) + float(report.duration)

    def slowest(self, count: int = 10) -> list[tuple[str, TestTimes]]:
        return sorted(self.tests.items(), key=lambda kv: -kv[1].total)[:count]

    def per_worker(self) -> dict[str, tuple[float, float]]:
        """Worker → (seconds in set-up and teardown, seconds in all)."""
        setup: dict[str, float] = defaultdict(float)
        busy: dict[str, float] = defaultdict(float)
        for times in self.tests.values():
            setup[times.worker] += times.phases.get("setup", 0.0) + times.phases.get(
                "teardown", 0.0
            )
            busy[times.worker] += times.total
        return {w: (setup[w], busy[w]) for w in sorted(busy)}

    def lines(self, count: int = 10) -> list[str]:
        if not self.tests:
            return []
        out = [f"slowest {min(count, len(self.tests))} (set-up + run + teardown):"]
        for nodeid, times in self.slowest(count):
            phases = " + ".join(
                f"{times.phases.get(p, 0.0):.0f}" for p in ("setup", "call", "teardown")
            )
            out.append(f"  {times.total:6.0f}s  {phases}  {nodeid}  [{times.worker}]")
        out.append("set-up and teardown per worker (of its busy time):")
        for worker, (setup, busy) in self.per_worker().items():
            out.append(f"  {worker}: {setup:.0f}s of {busy:.0f}s")
        return out
