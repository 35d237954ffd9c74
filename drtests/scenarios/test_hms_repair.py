"""Hive Metastore — Option 3, Metadata Repair (runbook 002): the consistency check with
--repair, then (MSCK) REPAIR TABLE against the table's S3 location.

Verification: every consistency check clean and the partitions (name and location per table)
equal to what they were before the incident — repair gives rows new ids, so this is the
measure of a repair, where a restore is measured by fingerprints.
"""

from __future__ import annotations

import pytest

from drtests.faults import (
    BucketTarget,
    HalfDroppedPartitions,
    PermanentLoss,
    SequenceBehind,
    WrongPartitionNames,
)
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.metastore.verify import compare_partitions, partition_inventory
from drtests.procedures import RUNBOOK_HMS
from drtests.procedures.metastore import metadata_repair
from drtests.results import CheckResult

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]
OPTION_3 = f"{RUNBOOK_HMS} · Remediation Option 3"
TABLE = ("production_critical", "fact_table")


def _verify(
    metastore: MetastoreUnderTest, expected: set[tuple[str, str, str, str | None]]
) -> list[CheckResult]:
    baseline = metastore.baseline()
    with metastore.connect() as conn:
        partitions = compare_partitions(conn, expected)
    return [*metastore.detect(baseline), partitions]


@pytest.mark.parametrize("repair", [True, False], ids=["repair", "no-repair"])
def test_metadata_repair(
    repair: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    inject_fault: InjectFault,
) -> None:
    """Partitions dropped half-way (their storage descriptors leaked), partition names
    rewritten by another tool, and a sequence counter behind: all three repaired online."""
    faults = [
        HalfDroppedPartitions(*TABLE, count=5),
        WrongPartitionNames(*TABLE, count=3),
        SequenceBehind(),
    ]
    scenario.begin(
        "hms_metadata_repair",
        "metastore",
        "Metadata repair of a damaged table",
        OPTION_3 + ("" if repair else " (skipped)"),
        kind="scenario" if repair else "negative-control",
    )
    with metastore.connect() as conn:
        expected = partition_inventory(conn)
    changes_before_fault = metastore.change_log()

    scenario.incident()
    for fault in faults:
        inject_fault(fault)
    expected_detection = tuple(c for f in faults for c in f.detected_by)
    detected = scenario.detected(metastore.detect(metastore.baseline()), expected_detection)
    assert set(expected_detection) <= detected

    if repair:
        with metastore.connect() as conn:
            not_repaired = metadata_repair(conn, metastore.s3, [TABLE], scenario.journal)
        assert not_repaired == []
        scenario.restored("repaired in place")

    verified = scenario.verified(_verify(metastore, expected))
    if not repair:
        assert not verified
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()


@pytest.mark.parametrize("repair", [True, False], ids=["repair", "no-repair"])
def test_msck_drop_for_partitions_whose_data_is_gone(
    repair: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    """A partition's files are gone for good; MSCK REPAIR TABLE … DROP PARTITIONS makes the
    metastore say so, instead of pointing queries at nothing."""
    lost = "dt=2026-02-01/hr=07"
    prefix = f"warehouse/{TABLE[0]}.db/{TABLE[1]}/{lost}/"
    scenario.begin(
        "hms_metadata_repair",
        "metastore",
        f"MSCK DROP after the loss of {lost}",
        OPTION_3 + (" (DROP)" if repair else " (skipped)"),
        kind="scenario" if repair else "negative-control",
    )
    with metastore.connect() as conn:
        expected = {p for p in partition_inventory(conn) if not (p[:2] == TABLE and p[2] == lost)}
    changes_before_fault = metastore.change_log()

    scenario.incident()
    fault = PermanentLoss(prefix)
    inject_fault(fault, data_bucket)
    detected = scenario.detected(metastore.detect(metastore.baseline()), ("s3_paths_exist",))
    assert "s3_paths_exist" in detected

    if repair:
        with metastore.connect() as conn:
            metadata_repair(conn, metastore.s3, [TABLE], scenario.journal, mode="DROP")
        scenario.restored("stale partition dropped")

    verified = scenario.verified(_verify(metastore, expected))
    if not repair:
        assert not verified
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()
