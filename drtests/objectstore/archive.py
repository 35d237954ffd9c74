"""Option B, Full Restore from Archive: a bucket prefix streamed into a ``tar.gz`` in the
backup bucket (multipart upload, no full copy in memory or on disk) with a manifest of every
object (key, size, SHA-256, version id, last-modified) and of the archive itself.

A restore reads the archive twice: first to verify it end to end against the manifest
(archive SHA-256, gzip CRC, every member's size and SHA-256) — a corrupt or truncated archive
is refused before anything is overwritten — then to upload the members.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drtests.errors import BackupNotFound, ChecksumMismatch, CorruptBackup
from drtests.objectstore.core import S3_ERRORS
from drtests.objectstore.integrity import Inventory, ObjectState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_SIZE = 8 * 1024 * 1024


class MultipartWriter(io.RawIOBase):
    """A write-only file whose bytes become an S3 multipart upload, one part at a time."""

    def __init__(self, client: S3Client, bucket: str, key: str, part_size: int = PART_SIZE) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.part_size = client, bucket, key, part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._buffer += chunk
        self.sha256.update(chunk)
        self.size += len(chunk)
        while len(self._buffer) >= self.part_size:
            self._upload(bytes(self._buffer[: self.part_size]))
            del self._buffer[: self.part_size]
        return len(chunk)

    def _upload(self, body: bytes) -> None:
        number = len(self._parts) + 1
        part = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": part["ETag"]})

    def finish(self) -> None:
        if self._buffer or not self._parts:
            self._upload(bytes(self._buffer))
            self._buffer.clear()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
        )

    def abort(self) -> None:
        self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
        )


class _HashingReader:
    def __init__(self, source: Any) -> None:
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


@dataclass(frozen=True)
class ArchiveRecord:
    bucket: str
    key: str
    source: str  # s3://bucket/prefix
    created_at: datetime
    objects: int
    size: int
    sha256: str

    @property
    def manifest_key(self) -> str:
        return f"{self.key}.manifest.json"


def archive_key_for(prefix: str, source_bucket: str, when: datetime) -> str:
    return f"{prefix}{source_bucket}/backup-{when:%Y%m%d-%H%M%S}.tar.gz"


def create_archive(
    client: S3Client, bucket: str, prefix: str, backup_bucket: str, archive_key: str
) -> ArchiveRecord:
    """Stream every current object under ``prefix`` into ``backup_bucket/archive_key``."""
    created_at = datetime.now(UTC).replace(microsecond=0)
    writer = MultipartWriter(client, backup_bucket, archive_key)
    objects: list[dict[str, Any]] = []
    try:
        with tarfile.open(fileobj=writer, mode="w|gz") as tar:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    response = client.get_object(Bucket=bucket, Key=obj["Key"])
                    reader = _HashingReader(response["Body"])
                    info = tarfile.TarInfo(obj["Key"])
                    info.size = int(response["ContentLength"])
                    info.mtime = int(response["LastModified"].timestamp())
                    tar.addfile(info, reader)
                    objects.append(
                        {
                            "key": obj["Key"],
                            "size": info.size,
                            "sha256": reader.sha256.hexdigest(),
                            "version_id": response.get("VersionId"),
                            "last_modified": response["LastModified"].isoformat(),
                        }
                    )
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    record = ArchiveRecord(
        backup_bucket,
        archive_key,
        f"s3://{bucket}/{prefix}",
        created_at,
        len(objects),
        writer.size,
        writer.sha256.hexdigest(),
    )
    manifest = {
        "archive": {**record.__dict__, "created_at": created_at.isoformat()},
        "objects": objects,
    }
    client.put_object(
        Bucket=backup_bucket,
        Key=record.manifest_key,
        ChecksumAlgorithm="SHA256",
        Body=json.dumps(manifest, indent=1).encode(),
        ContentType="application/json",
    )
    return record


def read_manifest(
    client: S3Client, backup_bucket: str, archive_key: str
) -> tuple[dict[str, Any], Inventory]:
    try:
        body = client.get_object(Bucket=backup_bucket, Key=f"{archive_key}.manifest.json")[
            "Body"
        ].read()
    except S3_ERRORS:
        raise BackupNotFound(
            f"s3://{backup_bucket}/{archive_key}.manifest.json not found"
        ) from None
    try:
        document = json.loads(body)
        inventory = {
            o["key"]: ObjectState(
                o["key"],
                int(o["size"]),
                o["sha256"],
                o.get("version_id"),
                datetime.fromisoformat(o["last_modified"]),
            )
            for o in document["objects"]
        }
    except (ValueError, KeyError, TypeError):
        raise CorruptBackup(f"{archive_key}.manifest.json: not a valid archive manifest") from None
    return document["archive"], inventory


def _open_archive(client: S3Client, bucket: str, key: str) -> tuple[_HashingReader, Any]:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except S3_ERRORS:
        raise BackupNotFound(f"archive s3://{bucket}/{key} not found") from None
    reader = _HashingReader(body)
    return reader, tarfile.open(fileobj=reader, mode="r|gz")  # type: ignore[call-overload]


def verify_archive(client: S3Client, backup_bucket: str, archive_key: str) -> Inventory:
    """Read the whole archive against its manifest; raise on the first problem, naming it."""
    archive, inventory = read_manifest(client, backup_bucket, archive_key)
    seen: dict[str, str] = {}
    try:
        reader, tar = _open_archive(client, backup_bucket, archive_key)
        with tar:
            for member in tar:
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                digest = hashlib.sha256()
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):  # type: ignore[misc]
                    digest.update(chunk)
                seen[member.name] = digest.hexdigest()
            while reader.read(1 << 20):  # the gzip trailer and padding count for the hash too
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CorruptBackup(
            f"{archive_key}: archive unreadable ({exc}); nothing was restored"
        ) from None
    if reader.sha256.hexdigest() != archive.get("sha256"):
        raise ChecksumMismatch(
            f"{archive_key}: archive sha256 differs from its manifest; nothing was restored"
        )
    for key, state in inventory.items():
        if seen.get(key) != state.sha256:
            problem = "missing from the archive" if key not in seen else "checksum mismatch"
            raise ChecksumMismatch(f"{archive_key}: member {key}: {problem}; nothing was restored")
    return inventory


def restore_archive(
    client: S3Client,
    backup_bucket: str,
    archive_key: str,
    target_bucket: str,
    verified: Inventory | None = None,
) -> int:
    """Upload every member back under its key, after :func:`verify_archive` (pass its result
    as ``verified`` when it already ran). Returns objects written."""
    inventory = (
        verified if verified is not None else verify_archive(client, backup_bucket, archive_key)
    )
    written = 0
    _, tar = _open_archive(client, backup_bucket, archive_key)
    with tar:
        for member in tar:
            handle = tar.extractfile(member)
            if handle is None or member.name not in inventory:
                continue
            # a tar member over a stream cannot seek; a plain reader makes s3transfer stream it
            client.upload_fileobj(
                _HashingReader(handle),  # type: ignore[arg-type]
                target_bucket,
                member.name,
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
            )
            written += 1
    return written
