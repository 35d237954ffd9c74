"""S3 Inventory reports as the listing source: a bucket of 10^8 objects is listed by S3
itself once a day, in files, instead of by 10^5 ListObjectsV2 calls in the night.

The format is AWS's: ``<dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/
manifest.json`` naming gzip'd CSV (or Parquet) data files under ``data/``, each with its
MD5; CSV rows carry the fields of ``fileSchema`` in order, keys URL-encoded. The newest
manifest is read, its data files checked against their MD5s, and its age (its
``creationTimestamp``) measured, since an inventory older than the RPO cannot vouch for the
data the RPO is about.

:func:`publish_inventory` writes the same format from a listing: for the tests, and for
S3-compatible stores without an inventory feature.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus

from drtests.errors import CorruptBackup, DRError
from drtests.objectstore.core import S3_ERRORS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FIELDS = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ChecksumAlgorithm",
)


@dataclass(frozen=True)
class InventoryRow:
    key: str
    size: int
    version_id: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class InventoryManifest:
    """One delivered inventory: where it is, when S3 made it, and its data files."""

    bucket: str  # where the report lives
    key: str  # of manifest.json
    source_bucket: str
    created: datetime
    file_format: str
    schema: tuple[str, ...]
    files: tuple[dict[str, Any], ...]

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.created.timestamp())


def _config_prefix(dest_prefix: str, source_bucket: str, config_id: str) -> str:
    return "/".join(p for p in (dest_prefix.strip("/"), source_bucket, config_id) if p) + "/"


def latest_manifest(
    client: S3Client, bucket: str, dest_prefix: str, source_bucket: str, config_id: str
) -> InventoryManifest:
    """The newest ``manifest.json`` of an inventory configuration."""
    prefix = _config_prefix(dest_prefix, source_bucket, config_id)
    manifests: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            manifests += [
                f"{p['Prefix']}manifest.json"
                for p in page.get("CommonPrefixes", [])
                if p["Prefix"][len(prefix) : -1][:4].isdigit()  # the dated folders, not data/
            ]
    except S3_ERRORS as exc:
        raise DRError(f"s3://{bucket}/{prefix}: cannot list the inventory: {exc}") from None
    for key in sorted(manifests, reverse=True):
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except S3_ERRORS:
            continue  # a folder still being delivered
        manifest = parse_manifest(bucket, key, body)
        if manifest.source_bucket != source_bucket:
            raise CorruptBackup(
                f"s3://{bucket}/{key}: an inventory of {manifest.source_bucket}, not of "
                f"{source_bucket}"
            )
        return manifest
    raise DRError(f"s3://{bucket}/{prefix}: no inventory delivered (no */manifest.json)")


def parse_manifest(bucket: str, key: str, body: bytes) -> InventoryManifest:
    try:
        document = json.loads(body)
        return InventoryManifest(
            bucket=bucket,
            key=key,
            source_bucket=str(document["sourceBucket"]),
            created=datetime.fromtimestamp(int(document["creationTimestamp"]) / 1000, UTC),
            file_format=str(document["fileFormat"]).upper(),
            schema=tuple(f.strip() for f in str(document["fileSchema"]).split(",")),
            files=tuple(document["files"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptBackup(f"s3://{bucket}/{key}: not an S3 Inventory manifest ({exc})") from None


def _data_file(client: S3Client, manifest: InventoryManifest, entry: dict[str, Any]) -> bytes:
    key = str(entry["key"])
    try:
        body = client.get_object(Bucket=manifest.bucket, Key=key)["Body"].read()
    except S3_ERRORS as exc:
        raise CorruptBackup(f"s3://{manifest.bucket}/{key}: inventory data file: {exc}") from None
    expected = str(entry.get("MD5checksum", ""))
    if not expected:
        raise CorruptBackup(
            f"s3://{manifest.bucket}/{key}: the inventory manifest gives no MD5 for it"
        )
    if hashlib.md5(body, usedforsecurity=False).hexdigest() != expected:
        raise CorruptBackup(
            f"s3://{manifest.bucket}/{key}: inventory data file does not match the manifest's MD5"
        )
    return body


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _rows_of(record: dict[str, Any]) -> InventoryRow | None:
    if str(record.get("IsDeleteMarker", "false")).lower() == "true":
        return None
    if str(record.get("IsLatest", "true")).lower() == "false":
        return None
    version = record.get("VersionId") or None
    modified = record.get("LastModifiedDate")
    return InventoryRow(
        key=str(record["Key"]),
        size=int(record.get("Size") or 0),
        version_id=str(version) if version else None,
        last_modified=modified if isinstance(modified, datetime) else _parse_time(modified),
    )


def read_inventory(
    client: S3Client, manifest: InventoryManifest, prefix: str = ""
) -> Iterator[InventoryRow]:
    """The current objects under ``prefix`` the inventory lists, file by file (memory stays
    one data file, not the bucket)."""
    if manifest.file_format not in ("CSV", "PARQUET"):
        raise DRError(f"inventory format {manifest.file_format} is not read (CSV, Parquet)")
    for entry in manifest.files:
        data = _data_file(client, manifest, entry)
        try:
            rows = list(_parse_data_file(manifest, data))
        except (OSError, EOFError, ValueError, KeyError, TypeError, csv.Error) as exc:
            # right MD5, wrong content: written wrong rather than damaged on the way
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise CorruptBackup(
                f"s3://{manifest.bucket}/{entry.get('key')}: not a valid {manifest.file_format} "
                f"inventory data file ({reason})"
            ) from None
        for row in rows:
            if row.key.startswith(prefix):
                yield row


def _parse_data_file(manifest: InventoryManifest, data: bytes) -> Iterator[InventoryRow]:
    records: Iterator[dict[str, Any]]
    if manifest.file_format == "CSV":
        text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(data)), encoding="utf-8")
        records = (dict(zip(manifest.schema, row, strict=False)) for row in csv.reader(text) if row)
        records = ({**r, "Key": unquote_plus(r["Key"])} for r in records)
    else:
        import pyarrow.parquet as pq

        records = iter(pq.read_table(io.BytesIO(data)).to_pylist())
    for record in records:
        row = _rows_of(record)
        if row is not None:
            yield row


def publish_inventory(
    client: S3Client,
    source_bucket: str,
    dest_bucket: str,
    dest_prefix: str,
    config_id: str,
    *,
    file_format: str = "CSV",
    rows_per_file: int = 100_000,
    created: datetime | None = None,
) -> str:
    """Write an inventory of ``source_bucket`` in AWS's layout; returns the manifest key."""
    created = created or datetime.now(UTC)
    base = _config_prefix(dest_prefix, source_bucket, config_id)
    folder = f"{base}{created:%Y-%m-%dT%H-%MZ}/"
    files: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        suffix = "csv.gz" if file_format.upper() == "CSV" else "parquet"
        key = f"{base}data/{len(files):05d}-{created:%Y%m%d%H%M}.{suffix}"
        body = _encode(batch, file_format)
        client.put_object(Bucket=dest_bucket, Key=key, Body=body)
        files.append(
            {
                "key": key,
                "size": len(body),
                "MD5checksum": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            }
        )
        batch.clear()

    for page in client.get_paginator("list_objects_v2").paginate(Bucket=source_bucket):
        for obj in page.get("Contents", []):
            batch.append(
                {
                    "Bucket": source_bucket,
                    "Key": obj["Key"],
                    "VersionId": "",
                    "IsLatest": "true",
                    "IsDeleteMarker": "false",
                    "Size": int(obj["Size"]),
                    "LastModifiedDate": obj["LastModified"]
                    .astimezone(UTC)
                    .strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "ChecksumAlgorithm": ",".join(obj.get("ChecksumAlgorithm", [])),
                }
            )
            if len(batch) >= rows_per_file:
                flush()
    flush()
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{dest_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": "CSV" if file_format.upper() == "CSV" else "Parquet",
        "fileSchema": ", ".join(FIELDS),
        "files": files,
    }
    body = json.dumps(manifest).encode()
    client.put_object(Bucket=dest_bucket, Key=f"{folder}manifest.json", Body=body)
    client.put_object(
        Bucket=dest_bucket,
        Key=f"{folder}manifest.checksum",
        Body=hashlib.md5(body, usedforsecurity=False).hexdigest().encode(),
    )
    return f"{folder}manifest.json"


def _encode(rows: list[dict[str, Any]], file_format: str) -> bytes:
    if file_format.upper() == "CSV":
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for row in rows:
            writer.writerow([quote(str(row[f]), safe="") if f == "Key" else row[f] for f in FIELDS])
        return gzip.compress(text.getvalue().encode())
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()
