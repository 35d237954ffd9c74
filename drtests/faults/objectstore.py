"""S3 faults on versioned buckets: deletions (delete markers), silent same-size corruption,
and permanent loss (every version gone). Each keeps what its revert needs; permanent loss
keeps a copy of the bytes it destroys, on local disk, before destroying them."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from drtests.faults.base import Fault
from drtests.objectstore.core import S3Endpoint, delete_all_versions

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DATA_INTEGRITY = "data_integrity"


@dataclass(frozen=True)
class BucketTarget:
    endpoint: S3Endpoint
    bucket: str
    environment: str
    workdir: Path

    def describe(self) -> dict[str, Any]:
        return {
            "component": "objectstore",
            "environment": self.environment,
            "endpoint": self.endpoint.describe(),
            "bucket": self.bucket,
        }

    def safety_name(self) -> str:
        return f"{self.endpoint.describe()}/{self.bucket}"

    def client(self) -> S3Client:
        return self.endpoint.client()


def _current_keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


class DeleteObjects(Fault[BucketTarget]):
    """DELETE every object under a prefix of a versioned bucket: delete markers on top."""

    kind = "s3-delete-prefix"
    detected_by: ClassVar[tuple[str, ...]] = (DATA_INTEGRITY, "s3_paths_exist")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def describe(self) -> str:
        return f"delete every object under {self.prefix} (delete markers)"

    def inject(self, target: BucketTarget) -> dict[str, Any]:
        client = target.client()
        markers = []
        for key in _current_keys(client, target.bucket, self.prefix):
            response = client.delete_object(Bucket=target.bucket, Key=key)
            markers.append([key, response.get("VersionId")])
        if not markers:
            raise ValueError(f"nothing to delete under s3://{target.bucket}/{self.prefix}")
        return {"markers": markers}

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        client = target.client()
        for key, marker in undo.get("markers", []):
            if marker:
                client.delete_object(Bucket=target.bucket, Key=key, VersionId=marker)
        return f"removed {len(undo.get('markers', []))} delete markers"


class OverwriteSameSize(Fault[BucketTarget]):
    """Silent corruption: new bytes of the same length over an object; only checksums see it."""

    kind = "s3-silent-corruption"
    detected_by = (DATA_INTEGRITY,)

    def __init__(self, key: str) -> None:
        self.key = key

    def describe(self) -> str:
        return f"overwrite {self.key} with different bytes of the same size"

    def inject(self, target: BucketTarget) -> dict[str, Any]:
        client = target.client()
        original = client.get_object(Bucket=target.bucket, Key=self.key)["Body"].read()
        garbled = bytes(b ^ 0x5A for b in original)
        response = client.put_object(
            Bucket=target.bucket, Key=self.key, Body=garbled, ChecksumAlgorithm="SHA256"
        )
        return {
            "bad_version": response.get("VersionId"),
            "sha256": hashlib.sha256(original).hexdigest(),
        }

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        if undo.get("bad_version"):
            target.client().delete_object(
                Bucket=target.bucket, Key=self.key, VersionId=undo["bad_version"]
            )
        return "removed the corrupt version"


class PermanentLoss(Fault[BucketTarget]):
    """Every version and delete marker under a prefix removed: versioning cannot help."""

    kind = "s3-permanent-loss"
    detected_by: ClassVar[tuple[str, ...]] = (DATA_INTEGRITY, "s3_paths_exist")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def describe(self) -> str:
        return f"remove every version of every object under {self.prefix}"

    def inject(self, target: BucketTarget) -> dict[str, Any]:
        client = target.client()
        keep = target.workdir / f"undo-{uuid.uuid4().hex[:8]}"
        keep.mkdir(parents=True)
        saved = []
        for n, key in enumerate(_current_keys(client, target.bucket, self.prefix)):
            client.download_file(target.bucket, key, str(keep / f"{n:06d}"))
            saved.append([key, f"{n:06d}"])
        (keep / "index.json").write_text(json.dumps(saved))
        delete_all_versions(client, target.bucket, self.prefix)
        return {"copy": str(keep), "objects": len(saved)}

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        client = target.client()
        keep = Path(undo["copy"])
        present = set(_current_keys(client, target.bucket, self.prefix))
        put = 0
        for key, name in json.loads((keep / "index.json").read_text()):
            if key not in present:
                client.upload_file(
                    str(keep / name), target.bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
                )
                put += 1
        return f"re-uploaded {put} of the objects kept before the loss"


OBJECTSTORE_FAULTS: tuple[type[Fault[BucketTarget]], ...] = (
    DeleteObjects,
    OverwriteSameSize,
    PermanentLoss,
)
