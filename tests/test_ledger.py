"""The fault ledger: a run killed after injecting leaves an entry the next run reverts."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtests.config import PostgresTarget, Profile, Safety
from drtests.environments import Environment
from drtests.faults import BlankStorageLocations, DatabaseTarget, DropMetastoreSchema, Fault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.ledger import FaultLedger
from drtests.recovery import revert_leftovers
from drtests.results import failed
from drtests.safety import SafetyRails


def test_entries_fold_events_and_survive_a_torn_line(tmp_path: Path) -> None:
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    first = ledger.begin("k", "d", {"environment": "local"}, {})
    ledger.injected(first, {"x": 1})
    second = ledger.begin("k", "d", {"environment": "local"}, {})
    ledger.injected(second, {})
    ledger.reverted(second, "done")
    with ledger.path.open("a") as handle:
        handle.write('{"event": "rever')  # a kill in the middle of a write
    assert [(e.fault_id, e.status, e.undo) for e in ledger.pending()] == [
        (first, "injected", {"x": 1})
    ]
    third = ledger.begin("k", "d", {"environment": "local"}, {})  # not glued to the torn line
    ledger.captured(third, {"y": 2})
    with ledger.path.open("a") as handle:
        handle.write('[1, 2]\n{"event": "begin", "fault_id": "nokind"}\n')  # not records
    assert [(e.fault_id, e.status) for e in ledger.pending()] == [
        (first, "injected"),
        (third, "captured"),
    ]


@pytest.mark.parametrize("environment", ["local", "containers"])
def test_leftovers_of_a_run_owned_environment_are_discarded(
    environment: str, tmp_path: Path
) -> None:
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    fid = ledger.begin("sequence-behind", "d", {"environment": environment, "host": "h"}, {})
    ledger.captured(fid, {"sequence": "s", "next_val": 9})
    lines = revert_leftovers(ledger, Profile(name="local"), SafetyRails(Profile(name="local")))
    assert f"discarded ({environment} environment of that run gone)" in lines[0]
    assert ledger.entries()[0].status == "discarded" and ledger.entries()[0].fault_id == fid


def _interrupted_run(ledger: FaultLedger, fault: Fault, target: DatabaseTarget) -> None:
    """What a run killed between injection and revert leaves behind."""
    fid = ledger.begin(fault.kind, fault.describe(), target.describe(), fault.params())
    undo = fault.capture(target)
    ledger.captured(fid, undo)
    fault.apply(target, undo)


def _live_profile(env: Environment, database: str, state_dir: Path) -> Profile:
    return Profile(
        name="staging",
        environment="live",
        postgres={"metastore": PostgresTarget(dsn=env.postgres.dsn(database))},  # type: ignore[arg-type]
        safety=Safety(allow_list=(f"postgresql://127.0.0.1:{env.postgres.port}/*",)),
        state_dir=state_dir,
    )


@pytest.mark.parametrize(
    "fault",
    [BlankStorageLocations("production_critical", "fact_table"), DropMetastoreSchema()],
    ids=lambda f: f.kind,
)
def test_next_run_reverts_a_live_leftover(
    fault: Fault, metastore: MetastoreUnderTest, dr_environment: Environment, tmp_path: Path
) -> None:
    before = metastore.baseline()
    live_target = DatabaseTarget(
        metastore.target.endpoint, metastore.target.database, "live", tmp_path
    )
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    _interrupted_run(ledger, fault, live_target)
    assert failed(metastore.detect(before))
    profile = _live_profile(dr_environment, metastore.target.database, tmp_path)

    refused = revert_leftovers(ledger, profile, SafetyRails(profile))
    assert "--dr-allow-destructive" in refused[0]
    assert ledger.entries()[0].status == "revert-failed"

    done = revert_leftovers(ledger, profile, SafetyRails(profile, allow_destructive=True))
    assert "reverted" in done[0]
    assert not ledger.pending()
    assert metastore.baseline().fingerprints == before.fingerprints
    assert not failed(metastore.detect(before))


def test_ctrl_c_during_the_revert_waits_for_it_then_interrupts() -> None:
    """A second Ctrl-C while faults are being reverted is held until the revert is done,
    then ends the run: no fault is left half reverted."""
    import os
    import signal

    from drtests.killpoints import interrupts_deferred

    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred("reverting 2 injected faults"):
        steps.append("first revert")
        os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C again
        steps.append("second revert")
    assert steps == ["first revert", "second revert"]
    assert signal.getsignal(signal.SIGINT) == before


def test_a_dry_run_revert_changes_nothing_and_an_unknown_fault_stays_pending(
    tmp_path: Path,
) -> None:
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    ledger.begin("sequence-behind", "d", {"environment": "live", "host": "h"}, {})
    unknown = ledger.begin("future-fault", "d", {"environment": "live", "host": "h"}, {})
    ledger.captured(unknown, {})
    before = ledger.path.read_text()
    profile = Profile(name="staging", environment="live", state_dir=tmp_path)
    lines = revert_leftovers(ledger, profile, SafetyRails(profile, dry_run=True))
    assert ledger.path.read_text() == before
    assert "would be closed" in lines[0]
    lines = revert_leftovers(ledger, profile, SafetyRails(profile, allow_destructive=True))
    assert "closed (the run stopped before it changed anything)" in lines[0]
    assert [e.fault_id for e in ledger.pending()] == [unknown]
