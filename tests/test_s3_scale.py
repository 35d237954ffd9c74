"""Verifying a lake past one machine, against a real S3 API (moto's server): stored checksums
decide objects without reading them, S3 Inventory reports replace listings (and are checked
for age and damage), and the Spark verification finds exactly what the single-process one
finds, damaged objects included."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from drtests.environments import Environment
from drtests.errors import CorruptBackup, DRError
from drtests.objectstore import S3Endpoint, ensure_bucket
from drtests.objectstore.integrity import compare, evidence_counts, take_inventory
from drtests.objectstore.s3inventory import latest_manifest, publish_inventory, read_inventory

PREFIX = "warehouse/t/"
MIB = 1024 * 1024


class RequestCounter:
    """Counts S3 requests by operation and the bytes of GetObject bodies: what a check
    costs on a lake, measured rather than estimated."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, int] = {}
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1


@pytest.fixture
def lake(dr_environment: Environment, tmp_path: Path) -> Iterator[tuple[S3Endpoint, str]]:
    """A bucket with small objects stored with a SHA-256, one without any checksum and a
    multipart object (composite checksum)."""
    endpoint = dr_environment.s3_primary
    name = f"lake-{uuid.uuid4().hex[:10]}"
    client = endpoint.client()
    ensure_bucket(client, name)
    for i in range(12):
        client.put_object(
            Bucket=name,
            Key=f"{PREFIX}part-{i:03d} with space+plus.parquet",
            Body=f"row {i}".encode() * 50,
            ChecksumAlgorithm="SHA256",
        )
    client.put_object(Bucket=name, Key=f"{PREFIX}legacy.csv", Body=b"written before checksums")
    _upload_multipart(client, name, f"{PREFIX}big.bin", tmp_path / "big.bin")
    yield endpoint, name


def _upload_multipart(client: Any, bucket: str, key: str, scratch: Path) -> None:
    """11 MiB of random bytes in three parts, stored with a composite SHA-256."""
    scratch.write_bytes(os.urandom(11 * MIB))
    client.upload_file(
        str(scratch),
        bucket,
        key,
        ExtraArgs={"ChecksumAlgorithm": "SHA256"},
        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
    )


def _reports_bucket(client: Any, name: str) -> str:
    """Where S3 Inventory delivers the lake's reports."""
    reports = f"{name}-inventory"
    ensure_bucket(client, reports)
    return reports


@dataclass(frozen=True)
class Inventoried:
    """The lake, a client of its S3 and the bucket its inventory reports go to."""

    endpoint: S3Endpoint
    name: str
    client: Any
    reports: str


@pytest.fixture
def inventoried(lake: tuple[S3Endpoint, str]) -> Inventoried:
    endpoint, name = lake
    client = endpoint.client()
    return Inventoried(endpoint, name, client, _reports_bucket(client, name))


def _damage(endpoint: S3Endpoint, bucket: str) -> None:
    client = endpoint.client()
    client.delete_object(Bucket=bucket, Key=f"{PREFIX}part-000 with space+plus.parquet")
    client.put_object(
        Bucket=bucket,
        Key=f"{PREFIX}part-001 with space+plus.parquet",
        Body=b"ROW 1" * 50,  # same size, other bytes
        ChecksumAlgorithm="SHA256",
    )
    client.put_object(Bucket=bucket, Key=f"{PREFIX}part-002 with space+plus.parquet", Body=b"x")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}stray.tmp", Body=b"left by a job")


def test_stored_checksums_decide_and_only_objects_without_one_are_read(
    lake: tuple[S3Endpoint, str],
) -> None:
    endpoint, name = lake
    client = endpoint.client()
    first = take_inventory(client, name, PREFIX)
    assert first["legacy.csv"].evidence == "bytes hashed"
    assert first["part-003 with space+plus.parquet"].evidence == "stored checksum"
    assert first["big.bin"].stored_checksum.endswith("-3")  # composite over 3 parts
    counter = RequestCounter(client)
    again = take_inventory(client, name, PREFIX, known=first)
    assert again["big.bin"].evidence == "stored composite checksum"
    assert again["big.bin"].sha256 == first["big.bin"].sha256
    assert counter.calls.get("GetObject", 0) == 1  # legacy.csv alone: 11 MiB not read again
    assert counter.calls["HeadObject"] == len(first)
    assert evidence_counts(again) == {
        "stored checksum": 12,
        "stored composite checksum": 1,
        "bytes hashed": 1,
    }


def test_a_changed_multipart_object_is_read_not_trusted(
    lake: tuple[S3Endpoint, str], tmp_path: Path
) -> None:
    endpoint, name = lake
    client = endpoint.client()
    before = take_inventory(client, name, PREFIX)
    _upload_multipart(client, name, f"{PREFIX}big.bin", tmp_path / "other.bin")
    after = take_inventory(client, name, PREFIX, known=before)
    assert after["big.bin"].evidence == "bytes hashed"
    assert [str(p).split(" (")[0] for p in compare(before, after)] == ["checksum-mismatch: big.bin"]


def test_an_inventory_report_replaces_the_listing(inventoried: Inventoried) -> None:
    client, name, reports = inventoried.client, inventoried.name, inventoried.reports
    expected = take_inventory(client, name, PREFIX)
    publish_inventory(client, name, reports, "inv", "daily", rows_per_file=5)
    manifest = latest_manifest(client, reports, "inv", name, "daily")
    assert len(manifest.files) == 3 and manifest.age_s < 120
    rows = list(read_inventory(client, manifest, PREFIX))
    assert {r.key[len(PREFIX) :] for r in rows} == set(expected)
    counter = RequestCounter(client)
    from_report = take_inventory(client, name, PREFIX, known=expected, keys=(r.key for r in rows))
    assert "ListObjectsV2" not in counter.calls
    assert compare(expected, from_report) == []


def test_the_newest_inventory_is_read_and_a_damaged_one_refused(
    inventoried: Inventoried,
) -> None:
    client, name, reports = inventoried.client, inventoried.name, inventoried.reports
    old = datetime.now(UTC) - timedelta(days=3)
    publish_inventory(client, name, reports, "", "daily", created=old)
    publish_inventory(client, name, reports, "", "daily", file_format="Parquet")
    newest = latest_manifest(client, reports, "", name, "daily")
    assert newest.file_format == "PARQUET" and newest.age_s < 120
    assert len(list(read_inventory(client, newest))) == 14
    data_key = newest.files[0]["key"]
    client.put_object(Bucket=reports, Key=data_key, Body=b"PAR1 truncated")
    with pytest.raises(CorruptBackup, match="does not match the manifest's MD5"):
        list(read_inventory(client, newest))
    with pytest.raises(DRError, match="no inventory delivered"):
        latest_manifest(client, reports, "", name, "weekly")
    # the right MD5 for the wrong content: written wrong, not damaged on the way
    bad = b"PAR1 not parquet"
    wrong = replace(newest, files=({"key": data_key, "MD5checksum": hashlib.md5(bad).hexdigest()},))  # noqa: S324
    client.put_object(Bucket=reports, Key=data_key, Body=bad)
    with pytest.raises(CorruptBackup, match="not a valid PARQUET inventory data file"):
        list(read_inventory(client, wrong))
    unsummed = replace(newest, files=({"key": data_key},))
    with pytest.raises(CorruptBackup, match="gives no MD5"):
        list(read_inventory(client, unsummed))
    with pytest.raises(CorruptBackup, match=f"an inventory of {name}, not of other"):
        publish_inventory(client, name, reports, "", "monthly")
        client.copy_object(
            Bucket=reports,
            Key="other/monthly/2030-01-01T00-00Z/manifest.json",
            CopySource={
                "Bucket": reports,
                "Key": latest_manifest(client, reports, "", name, "monthly").key,
            },
        )
        latest_manifest(client, reports, "", "other", "monthly")


def test_a_key_gone_since_the_inventory_is_missing_not_an_error(
    inventoried: Inventoried,
) -> None:
    client, name, reports = inventoried.client, inventoried.name, inventoried.reports
    expected = take_inventory(client, name, PREFIX)
    publish_inventory(client, name, reports, "", "daily")
    client.delete_object(Bucket=name, Key=f"{PREFIX}legacy.csv")  # after S3 made the report
    manifest = latest_manifest(client, reports, "", name, "daily")
    keys = (row.key for row in read_inventory(client, manifest, PREFIX))
    actual = take_inventory(client, name, PREFIX, known=expected, keys=keys)
    assert [str(p) for p in compare(expected, actual)] == ["missing: legacy.csv"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if not os.path.exists("/usr/bin/java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (./run tests installs it)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("drtests-verify")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.mark.xdist_group("spark")
def test_spark_finds_exactly_what_the_single_process_check_finds(
    lake: tuple[S3Endpoint, str], spark: Any, tmp_path: Path
) -> None:
    from drtests.objectstore.spark_verify import S3Access, read_findings, verify_on_spark

    endpoint, name = lake
    client = endpoint.client()
    expected = take_inventory(client, name, PREFIX)
    _damage(endpoint, name)
    single = compare(expected, take_inventory(client, name, PREFIX, known=expected))
    assert {p.kind for p in single} == {
        "missing",
        "extra",
        "size-mismatch",
        "checksum-mismatch",
    }
    access = S3Access(
        endpoint.endpoint_url, endpoint.region, endpoint.access_key_id, endpoint.secret_access_key
    )
    out = verify_on_spark(spark, access, name, PREFIX, expected, str(tmp_path / "findings"))
    assert read_findings(out) == single
    assert [p.evidence for p in read_findings(out)] == [p.evidence for p in single]
    # from the inventory's data files, read by the executors
    reports = _reports_bucket(client, name)
    publish_inventory(client, name, reports, "inv", "daily", rows_per_file=4)
    manifest = latest_manifest(client, reports, "inv", name, "daily")
    out2 = verify_on_spark(
        spark,
        access,
        name,
        PREFIX,
        expected,
        str(tmp_path / "findings-inventory"),
        inventory=(reports, manifest.file_format, manifest.schema),
        inventory_files=list(manifest.files),
    )
    assert read_findings(out2) == single


@pytest.mark.xdist_group("spark")
def test_the_spark_executors_cannot_write(lake: tuple[S3Endpoint, str]) -> None:
    from drtests.objectstore.spark_verify import ReadOnlyViolation, S3Access, read_only_client

    endpoint, name = lake
    client = read_only_client(
        S3Access(
            endpoint.endpoint_url,
            endpoint.region,
            endpoint.access_key_id,
            endpoint.secret_access_key,
        )
    )
    assert client.head_object(Bucket=name, Key=f"{PREFIX}legacy.csv")["ContentLength"] > 0
    with pytest.raises(ReadOnlyViolation, match="PutObject refused"):
        client.put_object(Bucket=name, Key=f"{PREFIX}x", Body=b"x")


@pytest.mark.xdist_group("spark")
def test_the_verification_runs_as_a_spark_application_on_the_cluster(
    lake: tuple[S3Endpoint, str], kube_emulator: Any, tmp_path: Path
) -> None:
    """The operator is played beside the API emulator: it runs what the SparkApplication
    names (spark_job.py with its --job argument) in local mode, with the credentials the
    Secret would give, and completes or fails it by the exit code."""
    import subprocess

    from kubernetes import client as k8s

    from drtests.config import SparkVerificationSettings
    from drtests.objectstore.spark_app import verify_on_cluster
    from drtests.platform.kubernetes import KubernetesPlatform
    from fixtures.kube_controllers import ClusterControllers

    endpoint, name = lake
    submitted: list[dict[str, Any]] = []

    def operator(app: dict[str, Any]) -> bool:
        submitted.append(app)
        spec = app["spec"]
        main = spec["mainApplicationFile"].removeprefix("local://")
        env = {
            **os.environ,
            "DRTESTS_SPARK_MASTER": "local[2]",
            "PYSPARK_PYTHON": sys.executable,
            "AWS_ACCESS_KEY_ID": endpoint.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key or "",
        }
        done = subprocess.run(
            [sys.executable, main, *spec["arguments"]], env=env, capture_output=True, timeout=300
        )
        return done.returncode == 0

    configuration = k8s.Configuration()
    configuration.host = kube_emulator.url
    api = k8s.ApiClient(configuration)
    controllers = ClusterControllers(api, "spark-operations", spark_runner=operator)
    platform = KubernetesPlatform(api, "spark-operations", {}, lambda *_: None, context="test")
    job_file = Path(__file__).resolve().parents[1] / "drtests/objectstore/spark_job.py"
    settings = SparkVerificationSettings(
        image="registry.example/drtests-spark:0.1",
        main_application_file=f"local://{job_file}",
        credentials_secret="lake-reader",
        work_uri=f"file://{tmp_path}/work",
        partitions=4,
        timeout_seconds=240,
    )
    try:
        client = endpoint.client()
        expected = take_inventory(client, name, PREFIX)
        _damage(endpoint, name)
        single = compare(expected, take_inventory(client, name, PREFIX, known=expected))
        found = verify_on_cluster(platform, settings, endpoint, name, PREFIX, expected, "r1")
        assert found == single
        (app,) = submitted
        assert app["spec"]["image"] == settings.image
        assert app["spec"]["driver"]["envFrom"] == [{"secretRef": {"name": "lake-reader"}}]
        assert endpoint.secret_access_key not in json.dumps(app)  # by reference only
        # a job that fails is a failed check, with the driver's last words
        broken = settings.model_copy(update={"main_application_file": "local:///nonexistent.py"})
        with pytest.raises(DRError, match="ended FAILED"):
            verify_on_cluster(platform, broken, endpoint, name, PREFIX, expected, "r2")
    finally:
        controllers.close()
    assert not controllers.errors, controllers.errors


def test_the_command_line_verifies_a_location_by_its_inventory(
    inventoried: Inventoried, tmp_path: Path
) -> None:
    """`drtests objectstore baseline|verify` on a live profile: listed by the inventory the
    profile names, failing on damage and on a report older than its maximum age."""
    import subprocess

    endpoint, name, client = inventoried.endpoint, inventoried.name, inventoried.client
    reports = inventoried.reports
    profile = tmp_path / "lake.toml"

    def write_profile(max_age: str) -> None:
        profile.write_text(
            f'name = "lake"\nenvironment = "live"\nstate_dir = "{tmp_path / "state"}"\n'
            # a live profile names its metastore; the S3 verification never connects to it
            '[postgres.metastore]\ndsn = "postgresql://hive@127.0.0.1:9/metastore"\n'
            f'[s3.primary]\nendpoint_url = "{endpoint.endpoint_url}"\n'
            f'access_key_id = "{endpoint.access_key_id}"\n'
            f'secret_access_key = "{endpoint.secret_access_key}"\n'
            f'[buckets]\ndata = ["{name}"]\n'
            f'[objectstore.inventory]\nbucket = "{reports}"\nprefix = "inv"\n'
            f'config_id = "daily"\n{max_age}'
        )

    def drtests(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drtests.cli", "objectstore", *args, "--profile", str(profile)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    write_profile("")
    baseline = tmp_path / "lake.jsonl.gz"
    recorded = drtests("baseline", "--prefix", PREFIX, "--out", str(baseline))
    assert recorded.returncode == 0, recorded.stderr
    assert "14 objects" in recorded.stdout
    publish_inventory(client, name, reports, "inv", "daily")
    clean = drtests("verify", "--prefix", PREFIX, "--expected", str(baseline))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "listed by the inventory of" in clean.stdout and "by stored checksum" in clean.stdout
    elsewhere = drtests("verify", "--prefix", PREFIX.rstrip("/"), "--expected", str(baseline))
    assert elsewhere.returncode == 2 and "is a baseline of" in elsewhere.stderr
    _damage(endpoint, name)
    publish_inventory(client, name, reports, "inv", "daily")  # a later report
    broken = drtests("verify", "--prefix", PREFIX, "--expected", str(baseline))
    assert broken.returncode == 1
    for kind in ("missing", "extra", "size-mismatch", "checksum-mismatch"):
        assert kind in broken.stdout, broken.stdout
    write_profile("max_age_seconds = 1\n")
    import time

    time.sleep(1.5)
    stale = drtests("verify", "--prefix", PREFIX, "--expected", str(baseline))
    assert stale.returncode == 1 and "it cannot vouch for the data" in stale.stdout
    assert "; decided by " in broken.stdout  # each difference says what decided it
    truncated = baseline.read_bytes()[:40]
    baseline.write_bytes(truncated)
    cut = drtests("verify", "--prefix", PREFIX, "--expected", str(baseline))
    assert cut.returncode == 2 and "not a baseline" in cut.stderr, cut.stderr
    empty = drtests("baseline", "--prefix", "warehuose/", "--out", str(tmp_path / "x.gz"))
    assert empty.returncode == 2 and "no object there" in empty.stderr
    baseline.write_bytes(b"not gzip")
    garbled = drtests("verify", "--prefix", PREFIX, "--expected", str(baseline))
    assert garbled.returncode == 2 and "not a baseline" in garbled.stderr
    assert "Traceback" not in garbled.stderr + stale.stderr + broken.stderr
    assert endpoint.secret_access_key not in clean.stdout + broken.stdout
