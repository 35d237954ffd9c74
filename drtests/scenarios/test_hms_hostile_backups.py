"""Hive Metastore Option 1 with backups that lie: each passes its checksums, and only what
the restore finds inside tells it from a good backup of the metastore.

- a valid dump of another database, its metadata claiming the metastore → refused before
  the swap, the previous backup restored; the control swaps it in unchecked and
  verification fails;
- corruption whose checksums were recomputed after it → the staging restore fails, the
  previous backup is restored; with no other backup, escalation and nothing changed;
- a column type changed inside the newest backup (content equal) → the content checks pass,
  the schema checks (against the baseline, and against Hive's DDL for the schema version)
  name the column; the previous backup then restores clean.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drtests.backups import BackupCatalog, BackupRecord
from drtests.errors import NoVerifiedBackup
from drtests.faults import DeleteDatabaseTables, DropMetastoreSchema
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.hostile_backups import (
    altered_copy,
    dump_of_another_database,
    flip_byte_in_data,
)
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import ChangeLog, measure_rpo
from drtests.postgres import dump_database, restore_into_new_database, swap_in
from drtests.procedures import RUNBOOK_HMS, MetastoreRestoreTarget, hms_full_restore
from drtests.procedures.staging import staging_name
from drtests.results import failed
from drtests.schema_fingerprint import SCHEMA_CHECK

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]
PROCEDURE = "hms_full_restore"
OPTION_1 = f"{RUNBOOK_HMS} · Remediation Option 1"


def _taken(age_s: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=age_s)


def _good_backup(catalog: BackupCatalog, metastore: MetastoreUnderTest, age_s: int) -> BackupRecord:
    return catalog.create(metastore.target.endpoint, metastore.target.database, _taken(age_s))


def _good_dump(metastore: MetastoreUnderTest, tmp_path: Path) -> Path:
    out = tmp_path / "metastore.dump"
    dump_database(metastore.target.endpoint, metastore.target.database, out)
    return out


def _measure_rpo(
    scenario: ScenarioRecorder, metastore: MetastoreUnderTest, before_fault: ChangeLog
) -> None:
    assert scenario.incident_time is not None
    scenario.measured_rpo(measure_rpo(before_fault, metastore.change_log(), scenario.incident_time))


def _foreign_backup(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    catalog: BackupCatalog,
    tmp_path: Path,
    age_s: int,
) -> BackupRecord:
    """A shop's database dumped and published as the metastore's backup, checksums right."""
    target = metastore.target
    dump = dump_of_another_database(
        target.endpoint, target.database, scenario.journal, tmp_path / "shop.dump"
    )
    return catalog.upload(dump, target.database, _taken(age_s))


def test_backup_of_another_database_is_refused_and_the_previous_restored(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Restore when the newest backup is a dump of another database",
        f"{OPTION_1}, newest backup not a metastore",
    )
    scenario.authorize(sabotage_catalog.target, "write metastore backups")
    baseline = metastore.baseline()
    older = _good_backup(sabotage_catalog, metastore, age_s=20)
    foreign = _foreign_backup(scenario, metastore, sabotage_catalog, tmp_path, age_s=10)
    scenario.finding(f"newest backup {foreign.key}: a dump of a shop database, checksums right")

    before_fault = metastore.change_log()
    scenario.incident()
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)

    outcome = hms_full_restore(
        metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
    )
    assert outcome.backup == older
    assert len(outcome.rejected) == 1 and outcome.rejected[0].startswith(foreign.key)
    assert "not a Hive metastore" in outcome.rejected[0], outcome.rejected
    scenario.finding(f"refused before the swap: {outcome.rejected[0]}")
    scenario.restored(older.uri)
    scenario.verified(metastore.verify(baseline))
    _measure_rpo(scenario, metastore, before_fault)
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_another_database_swapped_in_unchecked_fails_verification(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    """Control: the same dump put in place the way a restore without identification did
    (staging restore, then swap). Verification must fail: without the refusal, this
    backup replaces the metastore."""
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Dump of another database swapped in unchecked",
        f"{OPTION_1} (identification skipped)",
        kind="negative-control",
    )
    target = metastore.target
    baseline = metastore.baseline()
    scenario.incident()
    # the schema dropped first: its revert rebuilds the database whatever replaced it
    inject_fault(DropMetastoreSchema())
    dump = dump_of_another_database(
        target.endpoint, target.database, scenario.journal, tmp_path / "shop.dump"
    )
    staging = staging_name(target.database)
    scenario.journal.creating_database(target.endpoint, target.database, staging, "metastore")
    restore_into_new_database(target.endpoint, staging, dump)
    swap_in(target.endpoint, target.database, staging)
    scenario.journal.database_gone(staging)

    verified = scenario.verified(metastore.verify(baseline))
    assert not verified, "a dump of another database passed verification as the metastore"


def test_corruption_with_recomputed_checksums_falls_back(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Restore when the newest backup was damaged before its checksums were computed",
        f"{OPTION_1}, staging restore fails",
    )
    scenario.authorize(sabotage_catalog.target, "write metastore backups")
    baseline = metastore.baseline()
    older = _good_backup(sabotage_catalog, metastore, age_s=20)
    damaged = flip_byte_in_data(_good_dump(metastore, tmp_path), tmp_path / "flipped.dump")
    newest = sabotage_catalog.upload(damaged, metastore.target.database, _taken(10))

    before_fault = metastore.change_log()
    scenario.incident()
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)

    outcome = hms_full_restore(
        metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
    )
    assert outcome.backup == older
    assert [r.split(":")[0] for r in outcome.rejected] == [newest.key]
    scenario.finding(f"staging restore of {newest.key} failed: {outcome.rejected[0]}")
    scenario.restored(older.uri)
    scenario.verified(metastore.verify(baseline))
    _measure_rpo(scenario, metastore, before_fault)
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_only_backup_damaged_before_its_checksums_escalates_and_changes_nothing(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Restore when the only backup was damaged before its checksums were computed",
        f"{OPTION_1}, no good backup left",
        kind="negative-control",
    )
    scenario.authorize(sabotage_catalog.target, "write metastore backups")
    baseline = metastore.baseline()
    damaged = flip_byte_in_data(_good_dump(metastore, tmp_path), tmp_path / "flipped.dump")
    sabotage_catalog.upload(damaged, metastore.target.database, _taken(10))
    scenario.incident()
    inject_fault(fault)
    before = metastore.baseline()

    with pytest.raises(NoVerifiedBackup, match=r"\(1: .*escalate"):
        hms_full_restore(
            metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
        )
    assert metastore.baseline().fingerprints == before.fingerprints, "a refused restore wrote"
    assert not scenario.verified(metastore.verify(baseline))


def _location_as_text(conn: psycopg.Connection[Any]) -> None:
    conn.execute('ALTER TABLE "SDS" ALTER COLUMN "LOCATION" TYPE text')


def test_schema_damage_inside_a_backup_is_named_by_verification(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    sabotage_catalog: BackupCatalog,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    """The newest backup holds every row, but ``SDS.LOCATION`` as ``text``: content
    fingerprints cannot see it, the schema check names the column. The previous backup,
    restored next, verifies clean."""
    fault = DeleteDatabaseTables("production_critical")
    scenario.begin(
        PROCEDURE,
        "metastore",
        "Restore when the newest backup has a column of another type",
        f"{OPTION_1}, schema damage in the backup",
    )
    scenario.authorize(sabotage_catalog.target, "write metastore backups")
    target = metastore.target
    baseline = metastore.baseline()
    older = _good_backup(sabotage_catalog, metastore, age_s=20)
    altered = altered_copy(
        target.endpoint,
        target.database,
        _good_dump(metastore, tmp_path),
        _location_as_text,
        scenario.journal,
        tmp_path / "altered.dump",
    )
    newest = sabotage_catalog.upload(altered, target.database, _taken(10))

    before_fault = metastore.change_log()
    scenario.incident()
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)

    first = hms_full_restore(
        metastore_services, sabotage_catalog, scenario.incident_at, scenario.journal
    )
    assert first.backup == newest
    after_first = metastore.verify(baseline)
    assert sorted(failed(after_first)) == [SCHEMA_CHECK, "schema_matches_version"]
    for result in after_first:
        if result.name in (SCHEMA_CHECK, "schema_matches_version"):
            assert [f.subject for f in result.findings] == ["column SDS.LOCATION"], result
            scenario.finding(f"{newest.key}: {result.name}: {result.findings[0].detail}")

    second = hms_full_restore(
        metastore_services, sabotage_catalog, older.taken_at, scenario.journal
    )
    assert second.backup == older
    scenario.restored(older.uri)
    scenario.verified(metastore.verify(baseline))
    _measure_rpo(scenario, metastore, before_fault)
    scenario.assert_objectives_met()
