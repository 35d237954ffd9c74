"""The S3 part of a restore test: a seeded random sample of the objects in an archive
(Option B's ``tar.gz`` and manifest in the backup bucket) restored into a scratch folder
the run owns and compared byte for byte with the manifest. The archive is read once, as a
stream; the live buckets are not touched."""

from __future__ import annotations

import hashlib
import random
import re
import tarfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from drtests.errors import DRError, EndpointUnreachable
from drtests.objectstore.archive import read_manifest
from drtests.objectstore.core import S3_ERRORS
from drtests.results import CheckResult, Finding

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVE_KEY = re.compile(r"/backup-(\d{8}-\d{6})\.tar\.gz$")


@dataclass(frozen=True)
class ArchivePoint:
    bucket: str
    key: str
    taken_at: datetime

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def archive_points(client: S3Client, bucket: str, prefix: str) -> list[ArchivePoint]:
    """Every archive under ``prefix``, newest first (their time is in their key)."""
    points = []
    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                match = ARCHIVE_KEY.search(obj["Key"])
                if match:
                    taken = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
                    points.append(ArchivePoint(bucket, obj["Key"], taken.replace(tzinfo=UTC)))
    except S3_ERRORS as exc:
        raise EndpointUnreachable(f"listing s3://{bucket}/{prefix}: {exc}") from None
    return sorted(points, key=lambda p: p.taken_at, reverse=True)


@dataclass
class SampleOutcome:
    result: CheckResult
    sampled: int
    objects: int
    bytes_restored: int


def restore_sample(
    client: S3Client, point: ArchivePoint, size: int, rng: random.Random, scratch: Path
) -> SampleOutcome:
    """``size`` members of the archive, chosen by ``rng``, written under ``scratch`` and
    each compared with the manifest (size and SHA-256); the archive's own SHA-256 too."""
    result = CheckResult(
        "s3_sample_matches_manifest", "sampled archive objects equal the manifest, byte for byte"
    )
    try:
        archive, inventory = read_manifest(client, point.bucket, point.key)
    except DRError as exc:
        result.error = f"cannot run: {exc}"
        return SampleOutcome(result, 0, 0, 0)
    chosen = set(rng.sample(sorted(inventory), min(size, len(inventory))))
    found: dict[str, tuple[int, str]] = {}
    archive_sha = hashlib.sha256()
    written = 0
    try:
        body = client.get_object(Bucket=point.bucket, Key=point.key)["Body"]
        reader = _Hashing(body, archive_sha)
        with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
            for member in tar:
                handle = tar.extractfile(member)
                if handle is None or member.name not in chosen:
                    continue
                dest = scratch / hashlib.sha256(member.name.encode()).hexdigest()
                digest, size_read = hashlib.sha256(), 0
                with dest.open("wb") as out:
                    for chunk in iter(lambda h=handle: h.read(1 << 20), b""):  # type: ignore[misc]
                        out.write(chunk)
                        digest.update(chunk)
                        size_read += len(chunk)
                found[member.name] = (size_read, digest.hexdigest())
                written += size_read
            while reader.read(1 << 20):
                pass
    except S3_ERRORS as exc:
        result.error = f"cannot run: {point.uri} unreadable ({exc})"
        return SampleOutcome(result, len(chosen), len(inventory), written)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        result.findings.append(
            Finding(result.name, "error", point.uri, f"archive unreadable ({exc})")
        )
    if archive_sha.hexdigest() != archive.get("sha256"):
        result.findings.append(
            Finding(result.name, "error", point.uri, "archive SHA-256 differs from its manifest")
        )
    for key in sorted(chosen):
        want = inventory[key]
        got = found.get(key)
        if got is None:
            detail = "missing from the archive"
        elif got[0] != want.size:
            detail = f"{got[0]} bytes, the manifest says {want.size}"
        elif got[1] != want.sha256:
            detail = f"content differs from the manifest (sha256 {got[1][:12]}…)"
        else:
            continue
        result.findings.append(Finding(result.name, "error", key, detail))
    result.findings.append(
        Finding(
            result.name,
            "info",
            point.uri,
            f"{len(chosen)} of {len(inventory)} objects restored and compared ({written} bytes)",
        )
    )
    return SampleOutcome(result, len(chosen), len(inventory), written)


class _Hashing:
    def __init__(self, source: object, digest: hashlib._Hash) -> None:
        self._source = source
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._source.read(size)  # type: ignore[attr-defined]
        self._digest.update(data)
        return data
