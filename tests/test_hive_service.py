"""The real HMS tier's set-up: a missing part is named with what to install, and the JDBC
password lives only in a file no one else can read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from drtests.errors import EnvironmentUnavailable
from drtests.metastore import service
from drtests.metastore.service import HiveMetastoreService, HiveRuntime, find_hive_runtime
from drtests.postgres import PostgresEndpoint

SECRET = "s3cr3t-hms-password"


def test_missing_jdbc_driver_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(service, "JDBC_JAR", tmp_path / "postgresql.jar")
    with pytest.raises(EnvironmentUnavailable) as raised:
        find_hive_runtime()
    message = str(raised.value)
    assert str(tmp_path / "postgresql.jar") in message
    assert "apt-get install libpostgresql-jdbc-java" in message


def test_missing_java_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EnvironmentUnavailable, match="missing java"):
        find_hive_runtime()


def _service(tmp_path: Path) -> HiveMetastoreService:
    runtime = HiveRuntime("/usr/bin/java", tmp_path / "jars", tmp_path / "postgresql.jar")
    endpoint = PostgresEndpoint("127.0.0.1", 5432, "postgres", SECRET, tmp_path)
    return HiveMetastoreService(
        runtime,
        endpoint,
        "hive<&>",
        tmp_path / "hms",
        buckets=("spark-data",),
        warehouse="s3a://spark-data/hive-warehouse",
    )


def test_credentials_only_in_a_private_site_file(tmp_path: Path) -> None:
    hms = _service(tmp_path)
    site = hms.conf_dir / "hive-site.xml"
    assert stat.S_IMODE(site.stat().st_mode) == 0o600
    text = site.read_text()
    assert SECRET in text
    assert "jdbc:postgresql://127.0.0.1:5432/hive&lt;&amp;&gt;" in text  # XML-escaped
    assert "fs.viewfs.mounttable.spark-data.linkMergeSlash" in text
    assert not any(SECRET in arg for arg in hms.process.argv)


def test_not_ready_while_nothing_answers(tmp_path: Path) -> None:
    assert _service(tmp_path).answers() is False
