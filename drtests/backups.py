"""Metastore backups in S3: ``pg_dump`` streamed to the backup bucket, checksums in object
metadata and a manifest, listing, choosing the last backup before an incident, verified
download.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from drtests.errors import BackupNotFound, ChecksumMismatch, EndpointUnreachable
from drtests.objectstore import S3_ERRORS, S3Endpoint, s3_error
from drtests.postgres import PostgresEndpoint, _tool_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_PATTERN = re.compile(r"-backup-(\d{8}-\d{6})\.dump$")
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class BackupRecord:
    bucket: str
    key: str
    database: str
    taken_at: datetime
    size: int
    sha256: str
    md5: str
    #: the catalog's name when it was taken (``hive-metastore``, ``airflow``, …)
    component: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def manifest_key(self) -> str:
        return f"{self.key}.manifest.json"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["taken_at"] = self.taken_at.isoformat()
        return data


class _HashingReader:
    """A file-like view of a pipe that hashes and counts what passes through."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()  # noqa: S324 - the runbook verifies MD5; SHA-256 beside it
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return data


def file_digests(path: Path) -> tuple[str, str, int]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


class BackupCatalog:
    """A database's backups under ``s3://<bucket>/<prefix>``, named ``<name>-backup-<time>``."""

    def __init__(
        self,
        endpoint: S3Endpoint,
        bucket: str,
        prefix: str = "hive-metastore/",
        name: str = "hive-metastore",
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.client: S3Client = endpoint.client()
        self.bucket = bucket
        self.prefix = prefix

    @property
    def target(self) -> str:
        """How the safety rails name this catalog: endpoint and bucket."""
        return f"{self.endpoint.describe()}/{self.bucket}"

    def key_for(self, taken_at: datetime) -> str:
        return f"{self.prefix}{self.name}-backup-{taken_at:%Y%m%d-%H%M%S}.dump"

    # ------------------------------------------------------------ backup

    def create(
        self, pg: PostgresEndpoint, database: str, taken_at: datetime | None = None
    ) -> BackupRecord:
        """Stream ``pg_dump --format=custom`` to S3; record SHA-256 and MD5 in metadata and
        manifest. A failed dump leaves no object behind."""
        taken_at = (taken_at or datetime.now(UTC)).replace(microsecond=0)
        key = self.key_for(taken_at)
        dump = subprocess.Popen(
            [pg.tool("pg_dump"), "--format=custom", "--no-owner", *pg.tool_args(database)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=pg.tool_env(),
        )
        assert dump.stdout is not None and dump.stderr is not None
        reader = _HashingReader(dump.stdout)
        try:
            self.client.upload_fileobj(reader, self.bucket, key)  # type: ignore[arg-type]
        except S3_ERRORS as exc:
            dump.kill()
            dump.wait()
            raise s3_error(exc, f"upload of {key}", self.endpoint) from None
        stderr = dump.stderr.read()
        if dump.wait() != 0:
            self._delete_all_versions(key)
            result = subprocess.CompletedProcess(dump.args, dump.returncode, b"", stderr)
            raise EndpointUnreachable(f"pg_dump of {database} failed: {_tool_error(result, pg)}")
        record = BackupRecord(
            self.bucket,
            key,
            database,
            taken_at,
            reader.size,
            reader.sha256.hexdigest(),
            reader.md5.hexdigest(),
            self.name,
        )
        # server-side copy onto itself: the checksums are known only once the stream ends
        self._record_checksums(record)
        return record

    def upload(self, dump: Path, database: str, taken_at: datetime) -> BackupRecord:
        """Publish an existing ``pg_dump --format=custom`` file as a backup of ``database``,
        with its checksums in metadata and manifest, as :meth:`create` would."""
        taken_at = taken_at.replace(microsecond=0)
        sha256, md5, size = file_digests(dump)
        record = BackupRecord(
            self.bucket, self.key_for(taken_at), database, taken_at, size, sha256, md5, self.name
        )
        try:
            self.client.upload_file(str(dump), self.bucket, record.key)
        except S3_ERRORS as exc:
            raise s3_error(exc, f"upload of {record.key}", self.endpoint) from None
        self._record_checksums(record)
        return record

    def _record_checksums(self, record: BackupRecord) -> None:
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": record.key},
                self.bucket,
                record.key,
                ExtraArgs={
                    "Metadata": {
                        "sha256": record.sha256,
                        "md5checksum": record.md5,
                        "database": record.database,
                        "component": record.component,
                        "taken-at": record.taken_at.isoformat(),
                    },
                    "MetadataDirective": "REPLACE",
                },
            )
            self.client.put_object(
                Bucket=self.bucket,
                Key=record.manifest_key,
                Body=json.dumps(record.to_json(), indent=2).encode(),
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
            )
        except S3_ERRORS as exc:
            raise s3_error(exc, f"recording checksums of {record.key}", self.endpoint) from None

    def _delete_all_versions(self, key: str) -> None:
        versions = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
            self.client.delete_object(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"])

    # ------------------------------------------------------------ catalog

    def records(self) -> list[BackupRecord]:
        """Backups newest first, read from their object metadata."""
        records: list[BackupRecord] = []
        try:
            for key in self._backup_keys():
                head = self.client.head_object(Bucket=self.bucket, Key=key)
                meta = head.get("Metadata", {})
                match = KEY_PATTERN.search(key)
                assert match is not None
                taken_at = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
                records.append(
                    BackupRecord(
                        self.bucket,
                        key,
                        meta.get("database", ""),
                        taken_at,
                        head["ContentLength"],
                        meta.get("sha256", ""),
                        meta.get("md5checksum", ""),
                        meta.get("component", ""),
                    )
                )
        except S3_ERRORS as exc:
            raise s3_error(
                exc, f"listing s3://{self.bucket}/{self.prefix}", self.endpoint
            ) from None
        return sorted(records, key=lambda r: r.taken_at, reverse=True)

    def _backup_keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if name.startswith(f"{self.name}-") and KEY_PATTERN.search(name):
                    yield obj["Key"]

    def latest_before(self, incident_time: datetime) -> BackupRecord:
        """The newest backup taken at or before the incident."""
        return self.candidates_before(incident_time)[0]

    def candidates_before(self, incident_time: datetime) -> list[BackupRecord]:
        """Backups taken at or before the incident, newest first: the fallback order."""
        candidates = [r for r in self.records() if r.taken_at <= incident_time]
        if not candidates:
            raise BackupNotFound(
                f"no backup under s3://{self.bucket}/{self.prefix} taken before "
                f"{incident_time:%Y-%m-%d %H:%M:%S} UTC"
            )
        return candidates

    # ------------------------------------------------------------ restore side

    def download(self, record: BackupRecord, dest_dir: Path) -> Path:
        dest = dest_dir / record.key.rsplit("/", 1)[-1]
        try:
            self.client.download_file(self.bucket, record.key, str(dest))
        except S3_ERRORS as exc:
            if "404" in str(exc) or "NoSuchKey" in str(exc):
                raise BackupNotFound(f"backup {record.uri} does not exist") from None
            raise s3_error(exc, f"download of {record.key}", self.endpoint) from None
        return dest

    def verify(self, record: BackupRecord, path: Path) -> None:
        """Compare the downloaded file with the checksums in metadata and in the manifest."""
        sha256, md5, size = file_digests(path)
        expected = {"object metadata": (record.sha256, record.md5)}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=record.manifest_key)["Body"]
            manifest = json.loads(body.read())
            expected["manifest"] = (manifest.get("sha256", ""), manifest.get("md5", ""))
        except S3_ERRORS:
            pass  # metadata alone still decides; a missing manifest is noted below if it matters
        except ValueError:
            raise ChecksumMismatch(f"{record.manifest_key}: manifest is not valid JSON") from None
        for source, (want_sha, want_md5) in expected.items():
            if not want_sha and not want_md5:
                raise ChecksumMismatch(
                    f"{record.key}: no checksum recorded in {source}; cannot verify the backup"
                )
            if (want_sha and want_sha != sha256) or (want_md5 and want_md5 != md5):
                raise ChecksumMismatch(
                    f"{record.key}: checksum mismatch against {source} "
                    f"(sha256 {sha256[:12]}… expected {want_sha[:12]}…, {size} bytes)"
                )
