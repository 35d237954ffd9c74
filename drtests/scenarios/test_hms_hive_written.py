"""Hive Metastore runbook (002) on a metastore that real Hive wrote.

The HMS 2.3 Thrift service from pyspark's jars created the schema (DataNucleus) and every
database, table and partition (Thrift), so ids, PART_NAME escaping and column layouts are
Hive's own. On it: the detection checks, Option 1 with verification through the service
(SHOW DATABASES / TABLES / PARTITIONS) and its restart, and Option 3's repair.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from drtests.backups import BackupCatalog
from drtests.faults import (
    BlankStorageLocations,
    DeleteDatabaseTables,
    Fault,
    HalfDroppedPartitions,
    OrphanPartitions,
    SequenceBehind,
    WrongPartitionNames,
)
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.hive import HiveMetastore
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.metastore.checks import inventory
from drtests.metastore.schema import schema_version
from drtests.metastore.verify import compare_partitions, partition_inventory
from drtests.procedures import RUNBOOK_HMS, hms_full_restore
from drtests.procedures.metastore import metadata_repair
from drtests.results import failed

# one worker runs the scenarios on a Hive-written metastore: it alone has Hive write one
pytestmark = [
    pytest.mark.gameday,
    pytest.mark.metastore,
    pytest.mark.hive,
    pytest.mark.xdist_group("hive"),
]
TABLE = ("production_critical", "fact_table")
CHANGES_AFTER_BACKUP = 2

FAULTS: list[Fault[Any]] = [
    DeleteDatabaseTables("analytics"),
    BlankStorageLocations(*TABLE),
    OrphanPartitions("analytics", "events"),
    SequenceBehind("MPartition", "PARTITIONS", "PART_ID"),
    HalfDroppedPartitions(*TABLE, count=4),
    WrongPartitionNames("analytics", "events", count=2),
]


def test_checks_clean_on_hive_written_schema(hive_metastore: HiveMetastore) -> None:
    """The checks read Hive's own VERSION row and find nothing wrong with what Hive wrote;
    the service and the SQL agree on every database and its tables."""
    metastore = hive_metastore.metastore
    with metastore.connect() as conn:
        assert schema_version(conn) == "2.3.0"
        tables_in_sql = inventory(conn)
    results = metastore.detect(metastore.baseline())
    assert failed(results) == [], [(r.name, r.error, r.findings[:3]) for r in results if not r.ok]
    served = hive_metastore.catalog()
    assert {db: len(tables) for db, tables in served.items()} == tables_in_sql
    escaped = served["production_critical"]["events"].partitions
    assert "ts=2026-02-01 10%3A00%3A00" in escaped and "ts=k%3Dv" in escaped


@pytest.mark.destructive
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.kind)
def test_faults_detected_on_hive_written_schema(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    hive_metastore: HiveMetastore,
    inject_fault: InjectFault,
) -> None:
    """Negative control of the checks on Hive's schema: each fault trips its named checks,
    and the service itself serves the damage."""
    metastore = hive_metastore.metastore
    scenario.begin(
        "hms_metadata_repair",
        "metastore",
        f"Hive-written 2.3 metastore, no repair after: {fault.describe()}",
        f"{RUNBOOK_HMS} · Detection on the HMS 2.3 schema",
        kind="negative-control",
    )
    baseline = metastore.baseline()
    served = hive_metastore.catalog()
    scenario.incident()
    inject_fault(fault, metastore.target)
    detected = scenario.detected(metastore.detect(baseline), fault.detected_by)
    assert set(fault.detected_by) <= detected
    assert not scenario.verified(
        [*metastore.verify(baseline), hive_metastore.compare_catalog(served)]
    )


@pytest.mark.destructive
@pytest.mark.parametrize("restore", [True, False], ids=["restore", "no-restore"])
def test_full_restore_verified_through_thrift(
    restore: bool,
    scenario: ScenarioRecorder,
    hive_metastore: HiveMetastore,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    """Option 1 on the Hive-written metastore: the restored database is served by the
    restarted HMS exactly as before, and the restarted service writes with fresh ids."""
    metastore, service = hive_metastore.metastore, hive_metastore.service
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Full restore of a Hive-written 2.3 metastore, verified through Thrift",
        f"{RUNBOOK_HMS} · Remediation Option 1" + ("" if restore else " (skipped)"),
        kind="scenario" if restore else "negative-control",
    )
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    with scenario.journal.step("Take backup", f"{RUNBOOK_HMS} · Prevention 1") as step:
        baseline = metastore.baseline()
        served = hive_metastore.catalog()
        backup = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
        step.detail = f"{backup.uri} ({backup.size} bytes)"

    # partitions added through the service after the backup: what the restore loses
    with scenario.journal.step("Commit changes through HMS", "steady workload") as step:
        hive_metastore.append_partitions(*TABLE, CHANGES_AFTER_BACKUP, with_data=False)
        step.detail = f"{CHANGES_AFTER_BACKUP} partitions appended through Thrift, no data yet"
    changes_before_fault = metastore.change_log()

    scenario.incident(own_second=True)
    inject_fault(fault, metastore.target)
    scenario.detected(metastore.detect(baseline), fault.detected_by)
    assert hive_metastore.compare_catalog(served).findings, "HMS still serves the dropped tables"

    if restore:
        assert scenario.incident_time is not None
        hms_full_restore(
            hive_metastore.restore_target,
            backup_catalog,
            datetime.fromtimestamp(scenario.incident_time, UTC),
            scenario.journal,
        )
        scenario.restored(backup.uri)

    verified = scenario.verified(
        [*metastore.verify(baseline), hive_metastore.compare_catalog(served)]
    )
    if not restore:
        assert not verified, "verification passed although nothing was restored"
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    assert scenario.record.rpo is not None
    assert scenario.record.rpo.detail.startswith(f"{CHANGES_AFTER_BACKUP} committed changes lost")
    scenario.assert_objectives_met()

    with scenario.journal.step(
        "Test write through the restarted HMS", f"{RUNBOOK_HMS} · Verification"
    ) as step:
        hive_metastore.append_partitions(*TABLE, 1, with_data=True)
        after_write = metastore.detect(metastore.baseline())
        step.detail = f"partition appended by HMS pid {service.process.pid}"
    assert not failed(after_write), "the restarted HMS wrote inconsistent rows"


@pytest.mark.destructive
@pytest.mark.parametrize("repair", [True, False], ids=["repair", "no-repair"])
def test_metadata_repair_on_hive_written_schema(
    repair: bool,
    scenario: ScenarioRecorder,
    hive_metastore: HiveMetastore,
    inject_fault: InjectFault,
) -> None:
    """Option 3 on Hive's schema: the repaired rows are read back by HMS itself."""
    metastore = hive_metastore.metastore
    faults = [
        HalfDroppedPartitions(*TABLE, count=5),
        WrongPartitionNames(*TABLE, count=3),
        SequenceBehind(),
    ]
    scenario.begin(
        "hms_metadata_repair",
        "metastore",
        "Metadata repair of a Hive-written 2.3 metastore",
        f"{RUNBOOK_HMS} · Remediation Option 3" + ("" if repair else " (skipped)"),
        kind="scenario" if repair else "negative-control",
    )
    with metastore.connect() as conn:
        expected = partition_inventory(conn)
    served = hive_metastore.catalog()
    changes_before_fault = metastore.change_log()

    scenario.incident()
    for fault in faults:
        inject_fault(fault, metastore.target)
    expected_detection = tuple(c for f in faults for c in f.detected_by)
    assert set(expected_detection) <= scenario.detected(
        metastore.detect(metastore.baseline()), expected_detection
    )
    if repair:
        with metastore.connect() as conn:
            assert metadata_repair(conn, metastore.s3, [TABLE], scenario.journal) == []
        scenario.restored("repaired in place")

    with metastore.connect() as conn:
        partitions = compare_partitions(conn, expected)
    verified = scenario.verified(
        [
            *metastore.detect(metastore.baseline()),
            partitions,
            hive_metastore.compare_catalog(served),
        ]
    )
    if not repair:
        assert not verified
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()
