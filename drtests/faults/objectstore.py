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

from drtests.faults.base import Fault, RevertIncomplete, require
from drtests.killpoints import kill_point
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


def _current_versions(client: S3Client, bucket: str, prefix: str) -> dict[str, str]:
    """Key → the version id that is current now (delete markers excluded)."""
    current: dict[str, str] = {}
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                current[version["Key"]] = str(version.get("VersionId"))
    return current


def _newer_than(client: S3Client, bucket: str, key: str, version_id: str) -> list[str] | None:
    """The versions and delete markers of ``key`` stacked on top of ``version_id``; None
    when ``version_id`` itself is gone. S3 lists a key's versions newest first; a delete
    marker is above it when it is not older (one at the same instant that lies below is
    not current either, so removing it changes nothing that is served)."""
    versions: list[tuple[str, Any]] = []
    markers: list[tuple[str, Any]] = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        versions += [
            (str(v.get("VersionId")), v["LastModified"])
            for v in page.get("Versions", [])
            if v["Key"] == key
        ]
        markers += [
            (str(m.get("VersionId")), m["LastModified"])
            for m in page.get("DeleteMarkers", [])
            if m["Key"] == key
        ]
    ids = [vid for vid, _when in versions]
    if version_id not in ids:
        return None
    captured_at = versions[ids.index(version_id)][1]
    above = ids[: ids.index(version_id)]
    return above + [vid for vid, when in markers if when >= captured_at]


class DeleteObjects(Fault[BucketTarget]):
    """DELETE every object under a prefix of a versioned bucket: delete markers on top."""

    kind = "s3-delete-prefix"
    detected_by: ClassVar[tuple[str, ...]] = (DATA_INTEGRITY, "s3_paths_exist")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def describe(self) -> str:
        return f"delete every object under {self.prefix} (delete markers)"

    def capture(self, target: BucketTarget) -> dict[str, Any]:
        versions = _current_versions(target.client(), target.bucket, self.prefix)
        if not versions:
            raise ValueError(f"nothing to delete under s3://{target.bucket}/{self.prefix}")
        return {"versions": sorted(versions.items())}

    def apply(self, target: BucketTarget, undo: dict[str, Any]) -> None:
        client = target.client()
        for n, (key, _version) in enumerate(undo["versions"]):
            client.delete_object(Bucket=target.bucket, Key=key)
            if n == 0:
                kill_point("mid-damage")

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        """Remove what lies on top of each captured version (the delete markers), found in
        the bucket itself: exact whether every delete, some or none happened."""
        require(undo, "versions")
        client = target.client()
        removed, lost = 0, []
        for key, version in undo["versions"]:
            above = _newer_than(client, target.bucket, key, version)
            if above is None:
                lost.append(key)
                continue
            for vid in above:
                client.delete_object(Bucket=target.bucket, Key=key, VersionId=vid)
                removed += 1
        if lost:
            raise RevertIncomplete(
                f"{len(lost)} captured versions are gone (e.g. {lost[0]}); removed {removed} "
                "delete markers"
            )
        return f"removed {removed} delete markers"


class OverwriteSameSize(Fault[BucketTarget]):
    """Silent corruption: new bytes of the same length over an object; only checksums see it."""

    kind = "s3-silent-corruption"
    detected_by = (DATA_INTEGRITY,)

    def __init__(self, key: str) -> None:
        self.key = key

    def describe(self) -> str:
        return f"overwrite {self.key} with different bytes of the same size"

    def capture(self, target: BucketTarget) -> dict[str, Any]:
        answer = target.client().get_object(Bucket=target.bucket, Key=self.key)
        original = answer["Body"].read()
        return {"version": answer.get("VersionId"), "sha256": hashlib.sha256(original).hexdigest()}

    def apply(self, target: BucketTarget, undo: dict[str, Any]) -> None:
        client = target.client()
        original = client.get_object(Bucket=target.bucket, Key=self.key, VersionId=undo["version"])[
            "Body"
        ].read()
        garbled = bytes(b ^ 0x5A for b in original)
        client.put_object(
            Bucket=target.bucket, Key=self.key, Body=garbled, ChecksumAlgorithm="SHA256"
        )

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        require(undo, "version")
        client = target.client()
        above = _newer_than(client, target.bucket, self.key, str(undo["version"]))
        if above is None:
            raise RevertIncomplete(f"the good version of {self.key} is gone: nothing reverted")
        for vid in above:
            client.delete_object(Bucket=target.bucket, Key=self.key, VersionId=vid)
        return f"removed {len(above)} versions written over the good one"


class PermanentLoss(Fault[BucketTarget]):
    """Every version and delete marker under a prefix removed: versioning cannot help."""

    kind = "s3-permanent-loss"
    detected_by: ClassVar[tuple[str, ...]] = (DATA_INTEGRITY, "s3_paths_exist")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def describe(self) -> str:
        return f"remove every version of every object under {self.prefix}"

    def capture(self, target: BucketTarget) -> dict[str, Any]:
        """A copy of every current object, on local disk, readable by its owner only."""
        client = target.client()
        keep = target.workdir / "undo" / f"s3-{uuid.uuid4().hex[:8]}"
        keep.mkdir(parents=True, mode=0o700)
        keep.parent.chmod(0o700)
        saved = []
        for n, key in enumerate(_current_keys(client, target.bucket, self.prefix)):
            client.download_file(target.bucket, key, str(keep / f"{n:06d}"))
            (keep / f"{n:06d}").chmod(0o600)
            saved.append([key, f"{n:06d}"])
        (keep / "index.json").write_text(json.dumps(saved))
        return {"copy": str(keep), "objects": len(saved)}

    def apply(self, target: BucketTarget, undo: dict[str, Any]) -> None:
        delete_all_versions(target.client(), target.bucket, self.prefix)

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        require(undo, "copy")
        client = target.client()
        keep = Path(undo["copy"])
        if not (keep / "index.json").is_file():
            raise RevertIncomplete(f"the copy kept before the loss ({keep}) is gone")
        present = set(_current_keys(client, target.bucket, self.prefix))
        put = 0
        for key, name in json.loads((keep / "index.json").read_text()):
            if key not in present:
                client.upload_file(
                    str(keep / name), target.bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}
                )
                put += 1
        return f"re-uploaded {put} of the objects kept before the loss"


class StrayObjects(Fault[BucketTarget]):
    """A runaway job writes files that did not exist before the incident into a table's
    location: a restore "as of" before it must remove them. Reverted by deleting every
    version and delete marker of those keys (none existed when the fault was captured)."""

    kind = "s3-stray-objects"
    detected_by: ClassVar[tuple[str, ...]] = (DATA_INTEGRITY,)

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def describe(self) -> str:
        return f"write {len(self.keys)} objects that did not exist, e.g. {self.keys[0]}"

    def capture(self, target: BucketTarget) -> dict[str, Any]:
        client = target.client()
        for key in self.keys:
            listed = client.list_object_versions(Bucket=target.bucket, Prefix=key)
            entries = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
            if any(e["Key"] == key for e in entries):
                raise ValueError(f"s3://{target.bucket}/{key} has a history: not a stray key")
        return {"keys": list(self.keys)}

    def apply(self, target: BucketTarget, undo: dict[str, Any]) -> None:
        client = target.client()
        for n, key in enumerate(undo["keys"]):
            client.put_object(
                Bucket=target.bucket,
                Key=key,
                Body=f"PAR1 stray object {uuid.uuid4().hex} PAR1".encode(),
                ChecksumAlgorithm="SHA256",
            )
            if n == 0:
                kill_point("mid-damage")

    def revert(self, target: BucketTarget, undo: dict[str, Any]) -> str:
        require(undo, "keys")
        client = target.client()
        removed = 0
        for key in undo["keys"]:
            listed = client.list_object_versions(Bucket=target.bucket, Prefix=key)
            for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
                if entry["Key"] == key:
                    client.delete_object(
                        Bucket=target.bucket, Key=key, VersionId=str(entry.get("VersionId"))
                    )
                    removed += 1
        return f"removed {removed} versions and delete markers of {len(undo['keys'])} keys"


OBJECTSTORE_FAULTS: tuple[type[Fault[BucketTarget]], ...] = (
    DeleteObjects,
    StrayObjects,
    OverwriteSameSize,
    PermanentLoss,
)
