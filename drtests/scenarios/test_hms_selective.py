"""Hive Metastore — Option 2, Selective Table Recovery (runbook 002), both routes:

- from the backup: the table's rows (TBLS, storage descriptors, columns, serdes, params,
  partitions with key values, params and statistics) restored with fresh ids;
- from S3: drop the table's metadata, create it again as an external table at its location,
  MSCK REPAIR TABLE.

Both end with the same verification: every check clean, every other table's logical
fingerprint unchanged, and the recovered table as it was (all of it from the backup; its
structure and partitions from S3, which holds no statistics).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drtests.backups import BackupCatalog
from drtests.faults import BlankStorageLocations, DeleteDatabaseTables
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo, table_rpo
from drtests.metastore.tables import read_table, table_fingerprints
from drtests.metastore.verify import Baseline
from drtests.procedures import RUNBOOK_HMS, MetastoreRestoreTarget
from drtests.procedures.metastore import recreate_external_table, selective_table_restore
from drtests.results import CheckResult, Finding

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.metastore]
OPTION_2 = f"{RUNBOOK_HMS} · Remediation Option 2"
VICTIM: tuple[str, str] = ("production_critical", "fact_table")
NAME = ".".join(VICTIM)


def _fingerprints(metastore: MetastoreUnderTest, with_params: bool = True) -> dict[str, str]:
    with metastore.connect() as conn:
        return table_fingerprints(conn, with_params=with_params)


def _verify(
    metastore: MetastoreUnderTest,
    baseline: Baseline,
    others: dict[str, str],
    expected: str,
    with_params: bool,
) -> list[CheckResult]:
    now = _fingerprints(metastore)
    untouched = CheckResult("other_tables_untouched", "every other table as before")
    untouched.findings = [
        Finding(untouched.name, "error", name, "changed" if name in now else "missing")
        for name, digest in sorted(others.items())
        if now.get(name) != digest
    ]
    recovered = CheckResult("recovered_table_matches", f"{NAME} as it was")
    got = _fingerprints(metastore, with_params).get(NAME)
    if got != expected:
        recovered.findings.append(
            Finding(recovered.name, "error", NAME, "missing" if got is None else "differs")
        )
    return [*metastore.detect(baseline), untouched, recovered]


@pytest.mark.parametrize("recover", [True, False], ids=["restore", "no-restore"])
def test_selective_table_restore_from_backup(
    recover: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
) -> None:
    fault = DeleteDatabaseTables(*VICTIM)
    scenario.begin(
        "hms_selective_restore",
        "metastore",
        f"Selective restore of {NAME} from backup",
        OPTION_2 + (" (from backup)" if recover else " (skipped)"),
        kind="scenario" if recover else "negative-control",
    )
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    metastore.commit_changes(1, VICTIM)
    backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    victim_at_backup = _fingerprints(metastore)[NAME]
    backup_last_event = max(int(e) for e in metastore.change_log().events)
    metastore.commit_changes(2, VICTIM)  # the table's own work after the backup: lost
    others = {k: v for k, v in _fingerprints(metastore).items() if k != NAME}
    fault_last_event = max(int(e) for e in metastore.change_log().events)

    baseline = metastore.baseline()
    scenario.incident()
    inject_fault(fault)
    assert set(fault.detected_by) <= scenario.detected(
        metastore.detect(baseline), fault.detected_by
    )

    if recover:
        assert scenario.incident_time is not None
        used = selective_table_restore(
            metastore_services,
            backup_catalog,
            datetime.fromtimestamp(scenario.incident_time, UTC),
            *VICTIM,
            scenario.journal,
        )
        scenario.restored(used.uri)
    verified = scenario.verified(
        _verify(metastore, baseline, others, victim_at_backup, with_params=True)
    )
    if not recover:
        assert not verified
        return
    assert scenario.incident_time is not None
    with metastore.connect() as conn:
        rpo = table_rpo(conn, *VICTIM, backup_last_event, fault_last_event, scenario.incident_time)
    assert rpo.lost_changes == 2
    scenario.measured_rpo(rpo)
    scenario.assert_objectives_met()


@pytest.mark.parametrize("recover", [True, False], ids=["recreate", "no-recreate"])
def test_recreate_external_table_and_repair_partitions(
    recover: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    inject_fault: InjectFault,
) -> None:
    fault = BlankStorageLocations(*VICTIM)
    scenario.begin(
        "hms_selective_restore",
        "metastore",
        f"Recreate {NAME} from its S3 data",
        OPTION_2 + (" (recreate and MSCK)" if recover else " (skipped)"),
        kind="scenario" if recover else "negative-control",
    )
    structure = _fingerprints(metastore, with_params=False)[NAME]
    with metastore.connect() as conn:
        location = read_table(conn, *VICTIM).location
    others = {k: v for k, v in _fingerprints(metastore).items() if k != NAME}
    events_before = metastore.change_log()

    baseline = metastore.baseline()
    scenario.incident()
    inject_fault(fault)
    assert set(fault.detected_by) <= scenario.detected(
        metastore.detect(baseline), fault.detected_by
    )

    if recover:
        assert location is not None
        with metastore.connect() as conn:
            definition = read_table(conn, *VICTIM)  # DESCRIBE EXTENDED: columns survive
            recreate_external_table(conn, metastore.s3, definition, location, scenario.journal)
        scenario.restored(f"{NAME} recreated at {location}")
    verified = scenario.verified(_verify(metastore, baseline, others, structure, with_params=False))
    if not recover:
        assert not verified
        return
    assert scenario.incident_time is not None
    scenario.measured_rpo(
        measure_rpo(events_before, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()
