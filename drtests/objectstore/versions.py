"""Option A, S3 Version Restore: bring a key or a prefix back to its state as of a time.

"As of T" means the prefix exactly as it was at T. Per key: if only delete markers stand
above the version current at T, they are removed (the version becomes current again, nothing
is copied); if newer real versions stand above it (an overwrite), the version is copied back
server-side (CopyObject with VersionId, no bytes through the client). A key that did not
exist at T (created after it, or deleted before it and written again since) but exists now
is removed with a delete marker, which keeps every version it had. Keys expected but with
no version left are unrecoverable. S3 times have one-second resolution: a version written
in the second of T counts as at T.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Action = Literal["undelete", "copy-back", "remove", "unchanged", "unrecoverable"]


@dataclass(frozen=True)
class KeyOutcome:
    key: str
    action: Action
    version_id: str | None = None
    detail: str = ""


@dataclass
class VersionRestoreReport:
    outcomes: list[KeyOutcome]
    dry_run: bool

    def count(self, *actions: Action) -> int:
        return sum(o.action in actions for o in self.outcomes)

    @property
    def restored(self) -> int:
        return self.count("undelete", "copy-back", "remove")

    def per_key(self, limit: int = 50) -> list[str]:
        """One line per key that was not simply left as it was."""
        lines = [
            f"{o.action}: {o.key}"
            + (f" (version {o.version_id})" if o.version_id else "")
            + (f" — {o.detail}" if o.action in {"remove", "unrecoverable"} else "")
            for o in self.outcomes
            if o.action != "unchanged"
        ]
        return lines[:limit] + ([f"… {len(lines) - limit} more"] if len(lines) > limit else [])

    @property
    def unrecoverable(self) -> list[str]:
        return [o.key for o in self.outcomes if o.action == "unrecoverable"]

    def describe(self) -> str:
        verb = "would restore" if self.dry_run else "restored"
        return (
            f"{verb} {self.restored} (undeleted {self.count('undelete')}, copied back "
            f"{self.count('copy-back')}, removed as absent at the target time "
            f"{self.count('remove')}), unchanged {self.count('unchanged')}, unrecoverable "
            f"{len(self.unrecoverable)}"
        )


def _history(client: S3Client, bucket: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Per key, every version and delete marker, newest first (S3's own order per key)."""
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        entries: list[dict[str, Any]] = [{**v, "marker": False} for v in page.get("Versions", [])]
        entries += [{**m, "marker": True} for m in page.get("DeleteMarkers", [])]
        for entry in entries:
            history[entry["Key"]].append(entry)
    for entries in history.values():
        # newest first; IsLatest breaks ties within the same second
        entries.sort(key=lambda e: (e["LastModified"], e.get("IsLatest", False)), reverse=True)
    return history


def plan_key(key: str, entries: list[dict[str, Any]], as_of: datetime) -> KeyOutcome:
    """What brings one key back to its state at ``as_of``; ``entries`` newest first."""
    at_or_before = [e for e in entries if e["LastModified"] <= as_of]
    present_now = bool(entries) and not entries[0]["marker"]
    if not at_or_before or at_or_before[0]["marker"]:
        why = "created after the target time" if not at_or_before else "deleted at the target time"
        if present_now:
            return KeyOutcome(key, "remove", detail=f"{why}; a delete marker hides it again")
        return KeyOutcome(key, "unchanged", detail=why)
    target = at_or_before[0]
    newer = entries[: entries.index(target)]
    if not newer:
        return KeyOutcome(key, "unchanged", target["VersionId"])
    if all(e["marker"] for e in newer):
        return KeyOutcome(
            key, "undelete", target["VersionId"], ",".join(e["VersionId"] for e in newer)
        )
    return KeyOutcome(key, "copy-back", target["VersionId"])


def restore_as_of(
    client: S3Client,
    bucket: str,
    prefix: str,
    as_of: datetime,
    *,
    expected_keys: Iterable[str] = (),
    dry_run: bool = False,
    workers: int = 16,
) -> VersionRestoreReport:
    """Bring every key under ``prefix`` back to its state at ``as_of``. ``prefix`` is a
    directory, as Hive locations are: ``wh/t1`` covers ``wh/t1`` and ``wh/t1/…``, never a
    sibling ``wh/t10/…``. ``expected_keys`` (full keys, e.g. from a manifest) are reported
    unrecoverable when no version is left."""
    history = _history(client, bucket, prefix)
    if prefix and not prefix.endswith("/"):
        history = {k: v for k, v in history.items() if k == prefix or k.startswith(f"{prefix}/")}
    outcomes = [plan_key(key, entries, as_of) for key, entries in sorted(history.items())]
    outcomes += [
        KeyOutcome(k, "unrecoverable", detail="no version left")
        for k in sorted(set(expected_keys) - set(history))
    ]

    def apply(outcome: KeyOutcome) -> None:
        if outcome.action == "undelete":
            for marker in outcome.detail.split(","):
                client.delete_object(Bucket=bucket, Key=outcome.key, VersionId=marker)
        elif outcome.action == "remove":
            client.delete_object(Bucket=bucket, Key=outcome.key)
        elif outcome.action == "copy-back":
            assert outcome.version_id is not None
            client.copy_object(
                Bucket=bucket,
                Key=outcome.key,
                ChecksumAlgorithm="SHA256",
                CopySource={"Bucket": bucket, "Key": outcome.key, "VersionId": outcome.version_id},
            )

    if not dry_run:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            changes = [o for o in outcomes if o.action in {"undelete", "copy-back", "remove"}]
            list(pool.map(apply, changes))
    return VersionRestoreReport(outcomes, dry_run)
