"""The game day's closing lines on where the time went."""

from __future__ import annotations

from types import SimpleNamespace

from drtests.timing import RunTimes


def _report(nodeid: str, when: str, duration: float, worker: str | None) -> SimpleNamespace:
    node = SimpleNamespace(gateway=SimpleNamespace(id=worker)) if worker else None
    return SimpleNamespace(nodeid=nodeid, when=when, duration=duration, node=node)


def test_slowest_scenarios_and_set_up_per_worker() -> None:
    times = RunTimes()
    for nodeid, worker, phases in (
        ("a", "gw0", (30.0, 5.0, 1.0)),
        ("b", "gw0", (0.5, 60.0, 0.5)),
        ("c", "gw1", (2.0, 1.0, 0.0)),
    ):
        for when, seconds in zip(("setup", "call", "teardown"), phases, strict=True):
            times.record(_report(nodeid, when, seconds, worker))
    assert [n for n, _ in times.slowest(2)] == ["b", "a"]
    assert times.per_worker() == {"gw0": (32.0, 97.0), "gw1": (2.0, 3.0)}
    lines = times.lines(2)
    assert lines[0] == "slowest 2 (set-up + run + teardown):"
    assert "61s" in lines[1] and "[gw0]" in lines[1]
    assert "  gw1: 2s of 3s" in lines


def test_a_run_without_workers_is_main() -> None:
    times = RunTimes()
    times.record(_report("x", "call", 1.0, None))
    assert times.per_worker() == {"main": (0.0, 1.0)}
