"""MinIO/S3 Data Restore — section 2 of the restore procedure (000), options A, B and C,
and its verify-data-integrity step, against a real S3 API.

Each scenario: inventory the data (key, size, SHA-256) → the incident → detection by
verify-data-integrity and the metastore's S3 path check → the option's restore → verification
against the expected inventory, plus the metastore ↔ S3 consistency check → RTO, and RPO
measured from the objects the restore could not bring back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from drtests.environments import Environment
from drtests.errors import ChecksumMismatch, CorruptBackup
from drtests.faults import (
    BucketTarget,
    DeleteObjects,
    Fault,
    OverwriteSameSize,
    PermanentLoss,
    StrayObjects,
)
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest, scratch_prefix
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.objectstore.archive import archive_key_for, create_archive
from drtests.objectstore.integrity import Inventory, measure_object_rpo, take_inventory
from drtests.objectstore.replication import Location, sync
from drtests.plugin import DRSession
from drtests.procedures.objectstore import (
    RUNBOOK_S3,
    archive_restore,
    data_integrity,
    dr_restore,
    version_restore,
)
from drtests.results import CheckResult

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.objectstore]
PRE_RESTORE_CHECKLIST = "000 Restore Procedure · Pre-Restore Checklist"
WRITES_AFTER_BACKUP = 2


def _inventory(location: Location) -> Inventory:
    return take_inventory(location.endpoint.client(), location.bucket, location.prefix)


def _integrity(location: Location, expected: Inventory) -> CheckResult:
    return data_integrity(location.endpoint.client(), location.bucket, location.prefix, expected)


def _detect(
    location: Location, expected: Inventory, metastore: MetastoreUnderTest
) -> list[CheckResult]:
    """verify-data-integrity plus the metastore's view of S3."""
    s3_checks = [r for r in metastore.detect(metastore.baseline()) if r.name.startswith("s3_")]
    return [_integrity(location, expected), *s3_checks]


def _write_new_files(location: Location, count: int) -> None:
    """The nightly job keeps writing: new, uniquely named files into existing partitions (no
    new directories, so the metastore stays consistent)."""
    client = location.endpoint.client()
    partitions = sorted({k.rsplit("/", 1)[0] for k in _inventory(location) if "=" in k})
    for partition in partitions[:count]:
        name = f"part-{uuid.uuid4().hex[:12]}-late.snappy.parquet"
        client.put_object(
            Bucket=location.bucket,
            Key=f"{location.prefix}{partition}/{name}",
            Body=f"PAR1 written after the backup: {name} PAR1".encode(),
            ChecksumAlgorithm="SHA256",
        )


def _target_ready(scenario: ScenarioRecorder, location: Location) -> Inventory:
    """Pre-Restore Checklist: the endpoint answers, the bucket keeps versions (Option A needs
    them, and they make every restore reversible), and the data's inventory is taken."""
    with scenario.journal.step("Check restore target ready", PRE_RESTORE_CHECKLIST) as step:
        versioning = location.endpoint.client().get_bucket_versioning(Bucket=location.bucket)
        assert versioning.get("Status") == "Enabled", f"s3://{location.bucket} is not versioned"
        expected = _inventory(location)
        step.detail = f"s3://{location.bucket} versioned; {len(expected)} objects inventoried"
    return expected


def _as_of(incident_time: float) -> datetime:
    """The last instant before the incident's second (S3 times are whole seconds)."""
    return datetime.fromtimestamp(int(incident_time), UTC) - timedelta(microseconds=1)


# ------------------------------------------------------------------ Option A


OPTION_A_FAULTS: list[Fault[BucketTarget]] = [
    DeleteObjects("warehouse/production_critical.db/fact_table/dt=2026-02-01/"),
    OverwriteSameSize(
        "warehouse/production_critical.db/fact_table/dt=2026-02-01/hr=05/part-00000.snappy.parquet"
    ),
]


@pytest.mark.parametrize("fault", OPTION_A_FAULTS, ids=lambda f: f.kind)
def test_version_restore(
    fault: Fault[BucketTarget],
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    scenario.begin(
        "s3_version_restore",
        "objectstore",
        f"Version restore after: {fault.describe()}",
        f"{RUNBOOK_S3} · Option A",
    )
    expected = _target_ready(scenario, data_location)

    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    detected = scenario.detected(_detect(data_location, expected, metastore), fault.detected_by)
    assert set(fault.detected_by) <= detected

    assert scenario.incident_time is not None
    report = version_restore(
        data_location,
        _as_of(scenario.incident_time),
        [data_location.prefix + k for k in expected],
        scenario.journal,
    )
    assert report.restored > 0 and not report.unrecoverable
    scenario.restored(f"s3://{data_location.bucket}/{data_location.prefix} versions")

    scenario.verified(
        [_integrity(data_location, expected), *metastore.verify(metastore.baseline())]
    )
    scenario.measured_rpo(
        measure_object_rpo(expected, _inventory(data_location), scenario.incident_time)
    )
    scenario.assert_objectives_met()


@pytest.mark.negative_control
@pytest.mark.parametrize("fault", OPTION_A_FAULTS, ids=lambda f: f.kind)
def test_version_fault_without_restore_fails_verification(
    fault: Fault[BucketTarget],
    scenario: ScenarioRecorder,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    scenario.begin(
        "s3_version_restore",
        "objectstore",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK_S3} · Option A (skipped)",
        kind="negative-control",
    )
    expected = _inventory(data_location)
    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    assert not scenario.verified([_integrity(data_location, expected)])


def _stray_keys(location: Location) -> list[str]:
    """Keys a runaway job writes after the incident: names that never existed, next to the
    table's files."""
    partition = sorted({k.rsplit("/", 1)[0] for k in _inventory(location) if "=" in k})[0]
    tag = uuid.uuid4().hex[:10]
    return [
        f"{location.prefix}{partition}/part-{tag}-stray.snappy.parquet",
        f"{location.prefix}{partition}/_temporary/{tag} ü%.tmp",
    ]


def test_version_restore_removes_keys_absent_at_the_target_time(
    scenario: ScenarioRecorder,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    """As of T means the prefix as it was at T: files written after T did not exist then,
    so the restore hides them with a delete marker (their versions stay) and lists them."""
    scenario.begin(
        "s3_version_restore",
        "objectstore",
        "Version restore after: objects written after the target time",
        f"{RUNBOOK_S3} · Option A",
    )
    expected = _target_ready(scenario, data_location)
    stray = StrayObjects(_stray_keys(data_location))

    scenario.incident(own_second=True)
    inject_fault(stray, data_bucket)
    assert scenario.detected([_integrity(data_location, expected)], stray.detected_by)

    assert scenario.incident_time is not None
    report = version_restore(
        data_location,
        _as_of(scenario.incident_time),
        [data_location.prefix + k for k in expected],
        scenario.journal,
    )
    assert {o.key for o in report.outcomes if o.action == "remove"} == set(stray.keys)
    scenario.restored(f"s3://{data_location.bucket}/{data_location.prefix} versions")
    scenario.verified([_integrity(data_location, expected)])
    scenario.measured_rpo(
        measure_object_rpo(expected, _inventory(data_location), scenario.incident_time)
    )
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_keys_absent_at_the_target_time_without_restore_fail_verification(
    scenario: ScenarioRecorder,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    scenario.begin(
        "s3_version_restore",
        "objectstore",
        "No restore after: objects written after the target time",
        f"{RUNBOOK_S3} · Option A (skipped)",
        kind="negative-control",
    )
    expected = _inventory(data_location)
    scenario.incident(own_second=True)
    inject_fault(StrayObjects(_stray_keys(data_location)), data_bucket)
    assert not scenario.verified([_integrity(data_location, expected)])


# ------------------------------------------------------------------ Option B


def _archive(dr: DRSession, location: Location, prefix: str | None = None) -> str:
    prefix = prefix or dr.profile.objectstore.archive_prefix
    key = archive_key_for(prefix, location.bucket, datetime.now(UTC))
    create_archive(
        location.endpoint.client(),
        location.bucket,
        location.prefix,
        dr.profile.buckets.backups,
        key,
    )
    return key


def test_full_restore_from_archive(
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    fault = PermanentLoss(data_location.prefix)
    scenario.begin(
        "s3_archive_restore",
        "objectstore",
        f"Archive restore after: {fault.describe()}",
        f"{RUNBOOK_S3} · Option B",
    )
    scenario.authorize(
        f"{data_location.endpoint.describe()}/{dr.profile.buckets.backups}",
        "write an archive backup",
    )
    with scenario.journal.step("Archive backup", f"{RUNBOOK_S3} · Option B (backup)") as step:
        archive_key = _archive(dr, data_location)
        step.detail = f"s3://{dr.profile.buckets.backups}/{archive_key}"
    archived = _target_ready(scenario, data_location)
    _write_new_files(data_location, WRITES_AFTER_BACKUP)
    before_fault = _inventory(data_location)

    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    detected = scenario.detected(_detect(data_location, before_fault, metastore), fault.detected_by)
    assert set(fault.detected_by) <= detected

    client = data_location.endpoint.client()
    written = archive_restore(
        client, dr.profile.buckets.backups, archive_key, data_location.bucket, scenario.journal
    )
    assert written == len(archived)
    scenario.restored(f"s3://{dr.profile.buckets.backups}/{archive_key}")

    scenario.verified(
        [_integrity(data_location, archived), *metastore.verify(metastore.baseline())]
    )
    assert scenario.incident_time is not None
    rpo = measure_object_rpo(before_fault, _inventory(data_location), scenario.incident_time)
    assert rpo.lost_changes == WRITES_AFTER_BACKUP
    scenario.measured_rpo(rpo)
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_corrupt_archive_is_refused_before_anything_is_overwritten(
    dr: DRSession,
    dr_environment: Environment,
    scenario: ScenarioRecorder,
    data_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    fault = PermanentLoss(data_location.prefix)
    scenario.begin(
        "s3_archive_restore",
        "objectstore",
        "Archive restore from a corrupted archive",
        f"{RUNBOOK_S3} · Option B with a sabotaged archive",
        kind="negative-control",
    )
    # the archive it corrupts is its own: on a live target, under the scratch prefix
    prefix = (
        None if dr_environment.owned else scratch_prefix(dr, dr.profile.objectstore.archive_prefix)
    )
    archive_key = _archive(dr, data_location, prefix)
    archived = _inventory(data_location)
    client = data_location.endpoint.client()
    body = bytearray(
        client.get_object(Bucket=dr.profile.buckets.backups, Key=archive_key)["Body"].read()
    )
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=dr.profile.buckets.backups, Key=archive_key, Body=bytes(body))

    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    before_restore = _inventory(data_location)
    with pytest.raises((ChecksumMismatch, CorruptBackup), match="nothing was restored"):
        archive_restore(
            client, dr.profile.buckets.backups, archive_key, data_location.bucket, scenario.journal
        )
    scenario.finding("restore refused: the archive failed verification")
    assert _inventory(data_location) == before_restore, "a refused restore wrote objects"
    assert not scenario.verified([_integrity(data_location, archived)])


# ------------------------------------------------------------------ Option C


def test_cross_region_replication_restore(
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    data_location: Location,
    dr_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    fault = PermanentLoss(data_location.prefix)
    scenario.begin(
        "s3_dr_restore",
        "objectstore",
        f"DR-region restore after: {fault.describe()}",
        f"{RUNBOOK_S3} · Option C",
    )
    scenario.authorize(
        dr_location.endpoint.describe() + "/" + dr_location.bucket, "replicate to the DR region"
    )
    with scenario.journal.step(
        "Replicate to DR region", f"{RUNBOOK_S3} · Option C (replication)"
    ) as step:
        replication = sync(data_location, dr_location)
        step.detail = replication.describe()
    _target_ready(scenario, data_location)
    _write_new_files(data_location, WRITES_AFTER_BACKUP)
    before_fault = _inventory(data_location)

    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    detected = scenario.detected(_detect(data_location, before_fault, metastore), fault.detected_by)
    assert set(fault.detected_by) <= detected

    dr_restore(dr_location, data_location, scenario.journal)
    scenario.restored(dr_location.uri)

    dr_copy = _inventory(dr_location)
    scenario.verified(
        [
            _integrity(data_location, dr_copy),
            data_integrity(
                dr_location.endpoint.client(),
                dr_location.bucket,
                dr_location.prefix,
                _inventory(data_location),
                name="dr_copy_matches_primary",
            ),
            *metastore.verify(metastore.baseline()),
        ]
    )
    assert scenario.incident_time is not None
    rpo = measure_object_rpo(before_fault, _inventory(data_location), scenario.incident_time)
    assert rpo.lost_changes == WRITES_AFTER_BACKUP
    scenario.measured_rpo(rpo)
    scenario.assert_objectives_met()


@pytest.mark.negative_control
def test_loss_without_dr_restore_fails_verification(
    scenario: ScenarioRecorder,
    data_location: Location,
    dr_location: Location,
    data_bucket: BucketTarget,
    inject_fault: InjectFault,
) -> None:
    fault = PermanentLoss(data_location.prefix)
    scenario.begin(
        "s3_dr_restore",
        "objectstore",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK_S3} · Option C (skipped)",
        kind="negative-control",
    )
    sync(data_location, dr_location)
    scenario.incident(own_second=True)
    inject_fault(fault, data_bucket)
    assert not scenario.verified([_integrity(data_location, _inventory(dr_location))])
