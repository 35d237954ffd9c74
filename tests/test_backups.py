"""Backups: streamed dump with checksums; every kind of bad backup is a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtests.backups import BackupCatalog
from drtests.environments import Environment
from drtests.errors import BackupNotFound, ChecksumMismatch, CorruptBackup, EndpointUnreachable
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.objectstore import S3Endpoint
from drtests.postgres import (
    PostgresEndpoint,
    check_dump_readable,
    connect,
    database_exists,
    restore_into_new_database,
)


def _backup(catalog: BackupCatalog, metastore: MetastoreUnderTest, when: datetime) -> None:
    catalog.create(metastore.target.endpoint, metastore.target.database, taken_at=when)


def test_backup_records_checksums_and_latest_before_picks_by_incident_time(
    backup_catalog: BackupCatalog, metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    t0 = datetime(2026, 2, 10, 22, 0, tzinfo=UTC)
    for hours in (0, 2, 4):
        _backup(backup_catalog, metastore, t0 + timedelta(hours=hours))
    chosen = backup_catalog.latest_before(datetime(2026, 2, 11, 1, 30, tzinfo=UTC))
    assert chosen.key.endswith("hive-metastore-backup-20260211-000000.dump")
    path = backup_catalog.download(chosen, tmp_path)
    backup_catalog.verify(chosen, path)
    assert check_dump_readable(metastore.target.endpoint, path) > 20
    head = backup_catalog.client.head_object(Bucket=chosen.bucket, Key=chosen.key)
    assert head["Metadata"]["sha256"] == chosen.sha256 and len(chosen.md5) == 32


def test_no_backup_before_the_incident(backup_catalog: BackupCatalog) -> None:
    with pytest.raises(BackupNotFound, match="no backup under s3://spark-backups/hive-metastore/"):
        backup_catalog.latest_before(datetime(2020, 1, 1, tzinfo=UTC))


def test_checksum_mismatch_names_the_backup(
    backup_catalog: BackupCatalog, metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    record = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    data = backup_catalog.client.get_object(Bucket=record.bucket, Key=record.key)["Body"].read()
    backup_catalog.client.put_object(
        Bucket=record.bucket,
        Key=record.key,
        Body=data[:-1] + bytes([data[-1] ^ 1]),
        Metadata={"sha256": record.sha256, "md5checksum": record.md5},
    )
    with pytest.raises(ChecksumMismatch, match=record.key.rsplit("/", 1)[-1]):
        backup_catalog.verify(record, backup_catalog.download(record, tmp_path))


def test_truncated_dump_with_a_matching_checksum_is_corrupt(
    backup_catalog: BackupCatalog, metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    """A dump cut short before it was uploaded carries checksums of the cut bytes."""
    dump = tmp_path / "truncated.dump"
    record = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    whole = backup_catalog.client.get_object(Bucket=record.bucket, Key=record.key)["Body"].read()
    dump.write_bytes(whole[: len(whole) // 3])

    with pytest.raises(CorruptBackup, match=r"truncated\.dump: pg_restore failed"):
        restore_into_new_database(metastore.target.endpoint, "never_created", dump)
    assert not database_exists(metastore.target.endpoint, "never_created")


def test_not_a_dump_at_all(metastore: MetastoreUnderTest, tmp_path: Path) -> None:
    junk = tmp_path / "backup-20260211.sql"
    junk.write_text("-- a plain SQL file, not a custom-format archive\n")
    with pytest.raises(CorruptBackup, match="not a readable pg_dump archive"):
        check_dump_readable(metastore.target.endpoint, junk)


def test_unreachable_s3_is_one_line(dr_environment: Environment) -> None:
    dead = S3Endpoint("dead", "http://127.0.0.1:9", "us-east-1", "k", "s")
    with pytest.raises(EndpointUnreachable, match=r"S3 endpoint http://127.0.0.1:9 unreachable"):
        BackupCatalog(dead, "spark-backups").records()


def test_unreachable_postgres_is_one_line(dr_environment: Environment) -> None:
    dead = PostgresEndpoint("127.0.0.1", 9, "hive", "pw-xyz", dr_environment.postgres.bin_dir)
    expected = r"PostgreSQL 127\.0\.0\.1:9/metastore unreachable"
    with pytest.raises(EndpointUnreachable, match=expected):
        connect(dead, "metastore")


def test_wrong_password_is_reported_without_the_password(dr_environment: Environment) -> None:
    real = dr_environment.postgres
    wrong = PostgresEndpoint(real.host, real.port, real.user, "Wrong-Pass-123", real.bin_dir)
    with pytest.raises(EndpointUnreachable) as info:
        connect(wrong, "postgres")
    assert "password authentication failed" in str(info.value)
    assert "Wrong-Pass-123" not in str(info.value)


def test_failed_dump_leaves_no_backup_object(
    backup_catalog: BackupCatalog, dr_environment: Environment
) -> None:
    with pytest.raises(EndpointUnreachable, match="pg_dump of no_such_db failed"):
        backup_catalog.create(dr_environment.postgres, "no_such_db")
    assert backup_catalog.records() == []
