"""The full-restore procedure's failure paths: nothing is lost, services come back, and the
Rollback Procedure returns the metastore to its state before the restore."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtests.backups import BackupCatalog
from drtests.environments import Environment
from drtests.errors import NoVerifiedBackup
from drtests.faults import SequenceBehind
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.postgres import dump_database
from drtests.procedures import (
    Journal,
    MetastoreRestoreTarget,
    hms_full_restore,
    rollback_from_snapshot,
)


def _all_ready(target: MetastoreRestoreTarget) -> bool:
    from drtests.platform.local import LocalPlatform

    platform = target.platform
    assert isinstance(platform, LocalPlatform)
    return all(platform.ready(n) for n in (target.metastore_service, *target.dependents))


def test_unrestorable_backup_leaves_the_database_untouched_and_services_running(
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    tmp_path: Path,
) -> None:
    # a backup whose checksums are right but whose content cannot be restored
    bad = tmp_path / "cut.dump"
    dump_database(metastore.target.endpoint, metastore.target.database, bad)
    bad.write_bytes(bad.read_bytes()[:2000])
    record = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    backup_catalog.client.upload_file(str(bad), record.bucket, record.key)
    from drtests.backups import file_digests

    sha, md5, _ = file_digests(bad)
    backup_catalog.client.copy_object(
        Bucket=record.bucket,
        Key=record.key,
        CopySource={"Bucket": record.bucket, "Key": record.key},
        Metadata={"sha256": sha, "md5checksum": md5},
        MetadataDirective="REPLACE",
    )
    backup_catalog.client.delete_object(Bucket=record.bucket, Key=record.manifest_key)
    before = metastore.baseline()
    journal = Journal()

    with pytest.raises(NoVerifiedBackup, match=r"not a readable pg_dump archive.*escalate"):
        hms_full_restore(metastore_services, backup_catalog, datetime.now(UTC), journal)

    assert metastore.baseline().fingerprints == before.fingerprints
    assert _all_ready(metastore_services)
    statuses = {s.name: s.status for s in journal.steps}
    assert statuses["Verify checksum"] == "failed"
    assert statuses["Restart dependent services"] == "passed"


def test_rollback_returns_to_the_state_before_the_restore(
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
) -> None:
    clean = metastore.baseline()
    backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    SequenceBehind().inject(metastore.target)
    metastore.commit_changes(2)
    before_restore = metastore.baseline()
    journal = Journal()

    outcome = hms_full_restore(metastore_services, backup_catalog, datetime.now(UTC), journal)
    assert metastore.baseline().fingerprints == clean.fingerprints
    assert outcome.safety_snapshot is not None

    rollback_from_snapshot(metastore_services, outcome.safety_snapshot, journal)
    assert metastore.baseline().fingerprints == before_restore.fingerprints
    assert _all_ready(metastore_services)


def test_local_test_job_reads_the_metastore_and_its_data(
    metastore: MetastoreUnderTest, dr_environment: Environment, tmp_path: Path
) -> None:
    """The post-restore test job completes on a sound metastore and fails, naming the
    table, when a table's location holds no data."""
    from drtests.platform.local import LocalPlatform

    platform = LocalPlatform(tmp_path)
    assert platform.run_test_job(30) is None  # nothing configured: the step is skipped
    platform.set_test_job(
        dr_environment.postgres.dsn(metastore.target.database), dr_environment.s3_primary
    )
    good = platform.run_test_job(60)
    assert good is not None and good.state == "COMPLETED", good
    assert "tables resolved" in good.log
    with metastore.connect() as conn:
        conn.execute(
            'UPDATE "SDS" SET "LOCATION" = \'s3a://spark-data/nowhere/fact_table\' WHERE "SD_ID" = '
            '(SELECT t."SD_ID" FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
            "WHERE d.\"NAME\" = 'analytics' AND t.\"TBL_NAME\" = 'fact_table')"
        )
    bad = platform.run_test_job(60)
    assert bad is not None and bad.state == "FAILED"
    assert "analytics.fact_table: no data at s3a://spark-data/nowhere/fact_table" in bad.log
    assert dr_environment.postgres.password not in good.log + bad.log
