"""verify-data-integrity: inventories of a location (key, size, SHA-256, version, time) and
their comparison with a manifest or another location.

SHA-256 comes from S3's additional checksum where the object has a full-object one; a
composite (multipart) checksum or none at all means the object is read and hashed. An ETag is
never taken for an MD5: a multipart ETag is not one.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from drtests.results import RpoMeasurement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ProblemKind = Literal["missing", "extra", "size-mismatch", "checksum-mismatch"]


@dataclass(frozen=True)
class ObjectState:
    key: str  # relative to the inventoried prefix
    size: int
    sha256: str
    version_id: str | None
    last_modified: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_modified"] = self.last_modified.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectState:
        return cls(
            data["key"],
            int(data["size"]),
            data["sha256"],
            data.get("version_id"),
            datetime.fromisoformat(data["last_modified"]),
        )


Inventory = dict[str, ObjectState]


@dataclass(frozen=True)
class IntegrityProblem:
    kind: ProblemKind
    key: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}" + (f" ({self.detail})" if self.detail else "")


def full_object_sha256(head: dict[str, Any]) -> str | None:
    """The SHA-256 of the whole object from HeadObject, or None when S3 has only a composite
    checksum or none. A multipart object's SHA-256 is composite (a hash of part hashes),
    whether or not the server marks it ('xxx-N', ChecksumType COMPOSITE; some servers do
    neither), so its ETag's '-N' suffix is what tells a multipart object — the ETag is used
    for that alone, never as an MD5."""
    value = head.get("ChecksumSHA256")
    multipart = "-" in str(head.get("ETag", ""))
    if not value or multipart or "-" in value or head.get("ChecksumType") == "COMPOSITE":
        return None
    return base64.b64decode(value).hex()


def hash_object(client: S3Client, bucket: str, key: str, version_id: str | None = None) -> str:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    body = client.get_object(**kwargs)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def take_inventory(client: S3Client, bucket: str, prefix: str, workers: int = 16) -> Inventory:
    """Every current object under ``prefix`` with its size and SHA-256 (keys relative)."""
    listed = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        listed += page.get("Contents", [])

    def state(obj: Any) -> ObjectState:
        head: Any = client.head_object(Bucket=bucket, Key=obj["Key"], ChecksumMode="ENABLED")
        sha = full_object_sha256(head) or hash_object(
            client, bucket, obj["Key"], head.get("VersionId")
        )
        return ObjectState(
            obj["Key"][len(prefix) :],
            int(head["ContentLength"]),
            sha,
            head.get("VersionId"),
            head["LastModified"],
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {s.key: s for s in pool.map(state, listed)}


def compare(expected: Inventory, actual: Inventory) -> list[IntegrityProblem]:
    """Missing, extra, size and checksum differences, each named by key."""
    problems: list[IntegrityProblem] = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key), actual.get(key)
        if got is None:
            problems.append(IntegrityProblem("missing", key))
        elif want is None:
            problems.append(IntegrityProblem("extra", key))
        elif want.size != got.size:
            problems.append(
                IntegrityProblem("size-mismatch", key, f"{got.size} bytes, expected {want.size}")
            )
        elif want.sha256 != got.sha256:
            problems.append(
                IntegrityProblem(
                    "checksum-mismatch",
                    key,
                    f"sha256 {got.sha256[:12]}…, expected {want.sha256[:12]}…",
                )
            )
    return problems


def lost_since(before: Inventory, after: Inventory) -> list[ObjectState]:
    """Objects present (with that content) before an incident and not after a restore."""
    return [s for k, s in before.items() if k not in after or after[k].sha256 != s.sha256]


def measure_object_rpo(before: Inventory, after: Inventory, fault_time: float) -> RpoMeasurement:
    """RPO from data, as for the metastore: 0 when every object written before the fault is
    back; otherwise the fault time minus the write time of the newest object that survived."""
    lost = lost_since(before, after)
    surviving = [
        s.last_modified.timestamp()
        for k, s in before.items()
        if k in after and after[k].sha256 == s.sha256
    ]
    last = int(max(surviving)) if surviving else None
    if not lost:
        return RpoMeasurement(0, last, 0.0)
    window = fault_time - max(surviving) if surviving else float("inf")
    return RpoMeasurement(len(lost), last, max(0.0, window))


__all__ = ["IntegrityProblem", "Inventory", "ObjectState", "compare", "take_inventory"]
