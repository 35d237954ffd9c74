"""verify-data-integrity: inventories of a location (key, size, SHA-256, version, time) and
their comparison with a manifest or another location.

SHA-256 comes from S3's stored checksum where the object has a full-object one. A composite
(multipart) checksum is a hash of part hashes: it decides equality only against the same
composite value recorded earlier for that key (the manifest's), so an unchanged multipart
object is not read again either. Only an object stored without a usable checksum is read
and hashed. Each object's state says which evidence decided it. An ETag is never taken for
an MD5: a multipart ETag is not one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from botocore.exceptions import ClientError

from drtests.objectstore.core import iter_objects
from drtests.results import RpoMeasurement

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
R = TypeVar("R")
ProblemKind = Literal["missing", "extra", "size-mismatch", "checksum-mismatch"]
Evidence = Literal["stored checksum", "stored composite checksum", "bytes hashed"]


@dataclass(frozen=True)
class ObjectState:
    key: str  # relative to the inventoried prefix
    size: int
    sha256: str
    version_id: str | None
    last_modified: datetime
    stored_checksum: str = ""  # S3's SHA-256 as it reports it: base64, "-N" when composite
    evidence: Evidence = "bytes hashed"

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
            data.get("stored_checksum", ""),
            data.get("evidence", "bytes hashed"),
        )


Inventory = dict[str, ObjectState]


@dataclass(frozen=True)
class IntegrityProblem:
    kind: ProblemKind
    key: str
    detail: str = ""
    #: what decided the object as it is now (empty when it is missing)
    evidence: str = field(default="", compare=False)

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


def stored_sha256(head: dict[str, Any]) -> str:
    """S3's stored SHA-256 as it reports it, composite ones marked "-N" (parts)."""
    value = str(head.get("ChecksumSHA256") or "")
    if not value:
        return ""
    multipart = "-" in str(head.get("ETag", "")) or head.get("ChecksumType") == "COMPOSITE"
    if multipart and "-" not in value:
        parts = str(head.get("ETag", "")).rsplit("-", 1)[-1].strip('"')
        value = f"{value}-{parts if parts.isdigit() else '?'}"
    return value


def object_state(
    client: S3Client,
    bucket: str,
    key: str,
    relative: str,
    known: ObjectState | None = None,
) -> ObjectState | None:
    """One object's state from HeadObject; its bytes are read only when S3 holds no
    checksum that decides it (none, or a composite one differing from ``known``'s). None
    when the key is gone: an inventory lists what was there when S3 made it."""
    try:
        head: Any = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    size, stored = int(head["ContentLength"]), stored_sha256(head)
    evidence: Evidence
    if sha := full_object_sha256(head):
        evidence = "stored checksum"
    elif stored and known is not None and known.stored_checksum == stored and known.size == size:
        sha, evidence = known.sha256, "stored composite checksum"
    else:
        sha, evidence = hash_object(client, bucket, key, head.get("VersionId")), "bytes hashed"
    return ObjectState(
        relative, size, sha, head.get("VersionId"), head["LastModified"], stored, evidence
    )


def take_inventory(
    client: S3Client,
    bucket: str,
    prefix: str,
    workers: int = 16,
    known: Inventory | None = None,
    keys: Iterable[str] | None = None,
) -> Inventory:
    """Every current object under ``prefix`` with its size and SHA-256 (keys relative).

    ``known`` (a manifest taken earlier) lets an unchanged multipart object be decided by
    its composite checksum instead of its bytes. ``keys`` (full keys, e.g. from an S3
    Inventory report) replaces the listing.
    """
    if keys is None:
        keys = (entry.key for entry in iter_objects(client, bucket, prefix))
    known = known or {}
    states = stream_states(client, bucket, prefix, keys, known.get, workers)
    return {s.key: s for s in states}


def stream_states(
    client: S3Client,
    bucket: str,
    prefix: str,
    keys: Iterable[str],
    known: Callable[[str], ObjectState | None],
    workers: int = 16,
) -> Iterator[ObjectState]:
    """Each key's state as it is decided, in memory bounded by the requests in flight: the
    shape a check over an inventory of 10^8 keys needs."""

    def state(key: str) -> ObjectState | None:
        relative = key[len(prefix) :]
        return object_state(client, bucket, key, relative, known(relative))

    return (s for s in bounded_map(state, keys, workers) if s is not None)


def bounded_map(
    work: Callable[[T], R], items: Iterable[T], workers: int, window: int = 1024
) -> Iterator[R]:
    """``pool.map`` that keeps at most ``window`` items in flight: a listing of 10^6 keys
    does not become 10^6 futures in memory."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


BASELINE_FORMAT = "drtests-s3-baseline"


def dump_inventory(inventory: Inventory, location: str = "") -> bytes:
    """An inventory as JSON lines, after a header naming the location it was taken of:
    what a job elsewhere, or a later verification, reads the expected state from."""
    header = json.dumps({"format": BASELINE_FORMAT, "version": 1, "location": location})
    lines = [header, *(json.dumps(s.to_json()) for s in inventory.values())]
    return ("\n".join(lines) + "\n").encode()


def load_inventory(data: bytes) -> tuple[str, Inventory]:
    """The location and the states of :func:`dump_inventory`'s output; ValueError when it
    is something else."""
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty")
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("format") != BASELINE_FORMAT:
        raise ValueError(f"its first line is not a {BASELINE_FORMAT} header")
    states = {}
    for number, line in enumerate(lines[1:], 2):
        try:
            state = ObjectState.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"line {number}: not an object state ({exc})") from None
        states[state.key] = state
    return str(header.get("location", "")), states


def evidence_counts(inventory: Inventory) -> dict[str, int]:
    """How many objects each kind of evidence decided: what a report says about the check."""
    counts: dict[str, int] = {}
    for state in inventory.values():
        counts[state.evidence] = counts.get(state.evidence, 0) + 1
    return counts


def problem_for(
    key: str, want: ObjectState | None, got: ObjectState | None
) -> IntegrityProblem | None:
    """How one key differs from what was expected, if it does: the one rule both the
    single-process and the Spark verification apply."""
    if got is None:
        return IntegrityProblem("missing", key)
    if want is None:
        return IntegrityProblem("extra", key)
    if want.size != got.size:
        return IntegrityProblem("size-mismatch", key, f"{got.size} bytes, expected {want.size}")
    if want.sha256 != got.sha256:
        return IntegrityProblem(
            "checksum-mismatch",
            key,
            f"sha256 {got.sha256[:12]}…, expected {want.sha256[:12]}…",
        )
    return None


def with_evidence(problem: IntegrityProblem, got: ObjectState | None) -> IntegrityProblem:
    """A checksum mismatch says what decided the object's checksum; the listing decides
    the other kinds."""
    if problem.kind != "checksum-mismatch" or got is None:
        return problem
    return replace(problem, evidence=got.evidence)


def compare(expected: Inventory, actual: Inventory) -> list[IntegrityProblem]:
    """Missing, extra, size and checksum differences, each named by key."""
    problems = []
    for key in sorted(set(expected) | set(actual)):
        got = actual.get(key)
        problem = problem_for(key, expected.get(key), got)
        if problem is not None:
            problems.append(with_evidence(problem, got))
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
