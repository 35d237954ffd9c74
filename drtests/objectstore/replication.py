"""Option C, Cross-Region Replication Restore, and the replication that feeds it.

The suite keeps the DR copy itself (S3 replication rules are configuration the platform may
or may not have), so replication lag is measured, not assumed. Between buckets of one
endpoint the copy is server-side (CopyObject, multipart copy for large objects); between
endpoints the bytes are streamed, never held whole.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drtests.objectstore.core import S3Endpoint
from drtests.objectstore.integrity import full_object_sha256, hash_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef


SINGLE_COPY_LIMIT = 5 * 1024**3  # CopyObject's limit; larger objects are copied in parts


@dataclass(frozen=True)
class Location:
    endpoint: S3Endpoint
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class CopyReport:
    copied: int
    unchanged: int
    bytes_copied: int
    server_side: bool
    completed_at: datetime
    max_lag_s: float | None

    def describe(self) -> str:
        how = "server-side" if self.server_side else "streamed"
        lag = f", replication lag up to {self.max_lag_s:.1f}s" if self.max_lag_s is not None else ""
        return (
            f"{self.copied} objects copied ({how}, {self.bytes_copied} bytes), "
            f"{self.unchanged} unchanged{lag}"
        )


def _listing(client: S3Client, bucket: str, prefix: str) -> dict[str, tuple[int, datetime]]:
    listed: dict[str, tuple[int, datetime]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            listed[obj["Key"][len(prefix) :]] = (int(obj["Size"]), obj["LastModified"])
    return listed


def _sha256(client: S3Client, bucket: str, key: str) -> str:
    head: Any = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    return full_object_sha256(head) or hash_object(client, bucket, key)


def sync(source: Location, target: Location, *, workers: int = 16) -> CopyReport:
    """Copy what is missing or different at ``target``; never deletes. Keys only at the
    source are copied straight from the listings; keys on both sides with equal sizes are
    compared by SHA-256 (additional checksums, else the bytes)."""
    src_client, dst_client = source.endpoint.client(), target.endpoint.client()
    src = _listing(src_client, source.bucket, source.prefix)
    dst = _listing(dst_client, target.bucket, target.prefix)

    def differs(key: str) -> bool:
        if key not in dst or dst[key][0] != src[key][0]:
            return True
        return _sha256(src_client, source.bucket, source.prefix + key) != _sha256(
            dst_client, target.bucket, target.prefix + key
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        todo = [k for k, d in zip(sorted(src), pool.map(differs, sorted(src)), strict=True) if d]
    server_side = source.endpoint.endpoint_url == target.endpoint.endpoint_url and (
        source.endpoint.region == target.endpoint.region or source.endpoint.endpoint_url is None
    )

    def copy(key: str) -> None:
        src_key, dst_key = source.prefix + key, target.prefix + key
        if server_side and src[key][0] < SINGLE_COPY_LIMIT:
            # one CopyObject: the size is known from the listing, no HeadObject needed
            dst_client.copy_object(
                Bucket=target.bucket,
                Key=dst_key,
                ChecksumAlgorithm="SHA256",
                CopySource={"Bucket": source.bucket, "Key": src_key},
            )
        elif server_side:  # 5 GiB and more: multipart copy (UploadPartCopy)
            copy_source: CopySourceTypeDef = {"Bucket": source.bucket, "Key": src_key}
            dst_client.copy(
                copy_source, target.bucket, dst_key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
            )
        else:
            body = src_client.get_object(Bucket=source.bucket, Key=src_key)["Body"]
            dst_client.upload_fileobj(
                body, target.bucket, dst_key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
            )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(copy, todo))
    completed = datetime.now(UTC)
    lags = [(completed - src[k][1]).total_seconds() for k in todo]
    return CopyReport(
        len(todo),
        len(src) - len(todo),
        sum(src[k][0] for k in todo),
        server_side,
        completed,
        max(lags) if lags else None,
    )
