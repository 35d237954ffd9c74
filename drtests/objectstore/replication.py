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
from typing import TYPE_CHECKING

from drtests.objectstore.core import S3Endpoint
from drtests.objectstore.integrity import Inventory, take_inventory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef


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


def sync(
    source: Location,
    target: Location,
    *,
    workers: int = 16,
    source_inventory: Inventory | None = None,
) -> CopyReport:
    """Copy what is missing or different at ``target`` (by size and SHA-256); never deletes."""
    src_client, dst_client = source.endpoint.client(), target.endpoint.client()
    src = (
        source_inventory
        if source_inventory is not None
        else take_inventory(src_client, source.bucket, source.prefix, workers)
    )
    dst = take_inventory(dst_client, target.bucket, target.prefix, workers)
    todo = [s for k, s in sorted(src.items()) if k not in dst or dst[k].sha256 != s.sha256]
    server_side = source.endpoint.endpoint_url == target.endpoint.endpoint_url and (
        source.endpoint.region == target.endpoint.region or source.endpoint.endpoint_url is None
    )
    lags: list[float] = []

    def copy(state_key: str, version_id: str | None) -> None:
        src_key, dst_key = source.prefix + state_key, target.prefix + state_key
        if server_side:
            copy_source: CopySourceTypeDef = {"Bucket": source.bucket, "Key": src_key}
            if version_id:
                copy_source["VersionId"] = version_id
            dst_client.copy(
                copy_source, target.bucket, dst_key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
            )
        else:
            extra = {"VersionId": version_id} if version_id else {}
            body = src_client.get_object(Bucket=source.bucket, Key=src_key, **extra)["Body"]  # type: ignore[arg-type]
            dst_client.upload_fileobj(
                body, target.bucket, dst_key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
            )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda s: copy(s.key, s.version_id), todo))
    completed = datetime.now(UTC)
    lags = [(completed - s.last_modified).total_seconds() for s in todo]
    return CopyReport(
        len(todo),
        len(src) - len(todo),
        sum(s.size for s in todo),
        server_side,
        completed,
        max(lags) if lags else None,
    )


def client_of(location: Location) -> S3Client:
    return location.endpoint.client()
