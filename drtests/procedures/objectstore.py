"""S3/MinIO data restore: section 2 of the restore procedure, options A, B and C, and its
verify-data-integrity step."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from drtests.errors import DRError
from drtests.objectstore.archive import restore_archive, verify_archive
from drtests.objectstore.core import S3_ERRORS
from drtests.objectstore.integrity import (
    IntegrityProblem,
    Inventory,
    compare,
    evidence_counts,
    take_inventory,
)
from drtests.objectstore.replication import CopyReport, Location, sync
from drtests.objectstore.s3inventory import latest_manifest, read_inventory
from drtests.objectstore.spark_app import verify_on_cluster
from drtests.objectstore.versions import VersionRestoreReport, restore_as_of
from drtests.procedures.journal import RUNBOOK_RESTORE, Journal
from drtests.results import CheckResult, Finding

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from drtests.config import Profile
    from drtests.objectstore import S3Endpoint
    from drtests.platform.kubernetes import KubernetesPlatform

RUNBOOK_S3 = f"{RUNBOOK_RESTORE} · §2 MinIO/S3 Data Restore"
DATA_INTEGRITY = "data_integrity"


def data_integrity(
    client: S3Client, bucket: str, prefix: str, expected: Inventory, name: str = DATA_INTEGRITY
) -> CheckResult:
    """verify-data-integrity: the location against an expected inventory (a manifest or
    another location): missing, extra, size and checksum differences, each by key."""
    result = CheckResult(name, f"s3://{bucket}/{prefix} against the expected inventory")
    try:
        result.findings = _compared(result, client, bucket, prefix, expected)
    except S3_ERRORS as exc:
        result.error = f"cannot run: {exc}"
    return result


def _compared(
    result: CheckResult,
    client: S3Client,
    bucket: str,
    prefix: str,
    expected: Inventory,
    keys: Iterable[str] | None = None,
) -> list[Finding]:
    """The location's state against ``expected`` in this process: what decided the objects
    goes to the description, each difference to a finding."""
    actual = take_inventory(client, bucket, prefix, known=expected, keys=keys)
    decided = ", ".join(f"{n} by {kind}" for kind, n in sorted(evidence_counts(actual).items()))
    if decided:
        result.description += f" ({decided})"
    return _findings(result.name, bucket, prefix, compare(expected, actual))


def _findings(
    name: str, bucket: str, prefix: str, problems: list[IntegrityProblem]
) -> list[Finding]:
    return [
        Finding(
            name,
            "error",
            f"s3://{bucket}/{prefix}{p.key}",
            f"{p.kind} {p.detail}".strip() + (f"; decided by {p.evidence}" if p.evidence else ""),
        )
        for p in problems
    ]


def verify_lake(
    profile: Profile,
    endpoint: S3Endpoint,
    bucket: str,
    prefix: str,
    expected: Inventory,
    run_id: str,
    platform: KubernetesPlatform | None = None,
    name: str = DATA_INTEGRITY,
) -> CheckResult:
    """verify-data-integrity as the profile says to run it at scale: listed by S3
    Inventory when ``[objectstore.inventory]`` names one (a report older than its maximum
    age fails the check: it cannot vouch for the data), run on Spark when
    ``[objectstore.spark]`` is set and the platform is Kubernetes, else in this process."""
    settings = profile.objectstore
    where = f"s3://{bucket}/{prefix}"
    result = CheckResult(name, f"{where} against the expected manifest")
    client = endpoint.client()
    report = None
    try:
        if settings.inventory is not None:
            inv = settings.inventory
            report = latest_manifest(client, inv.bucket, inv.prefix, bucket, inv.config_id)
            limit = inv.max_age_seconds or profile.objective("s3_archive_restore").rpo_seconds
            result.description += f"; listed by the inventory of {report.created:%Y-%m-%d %H:%M}Z"
            if report.age_s > limit:
                result.findings.append(
                    Finding(
                        name,
                        "error",
                        f"s3://{inv.bucket}/{report.key}",
                        f"inventory {report.age_s / 3600:.1f} h old, older than "
                        f"{limit / 3600:.1f} h: it cannot vouch for the data",
                    )
                )
                return result
        if settings.spark is not None and platform is not None:
            result.description += "; on Spark"
            problems = verify_on_cluster(
                platform, settings.spark, endpoint, bucket, prefix, expected, run_id, report
            )
            result.findings += _findings(name, bucket, prefix, problems)
        else:
            keys = None
            if report is None:
                result.description += "; listed by ListObjectsV2"
            else:
                keys = (row.key for row in read_inventory(client, report, prefix))
            result.findings += _compared(result, client, bucket, prefix, expected, keys)
    except (*S3_ERRORS, DRError) as exc:
        result.error = f"cannot run: {exc}"
    return result


def version_restore(
    location: Location, as_of: datetime, expected_keys: list[str], journal: Journal
) -> VersionRestoreReport:
    """Option A: list versions, then bring each key back to its version at ``as_of``."""
    client = location.endpoint.client()
    with journal.step("List object versions", f"{RUNBOOK_S3} · Option A") as step:
        plan = restore_as_of(
            client,
            location.bucket,
            location.prefix,
            as_of,
            expected_keys=expected_keys,
            dry_run=True,
        )
        step.detail = plan.describe()
    with journal.step("Restore object versions", f"{RUNBOOK_S3} · Option A") as step:
        report = restore_as_of(
            client, location.bucket, location.prefix, as_of, expected_keys=expected_keys
        )
        step.detail = "; ".join([report.describe(), *report.per_key()])
    return report


def archive_restore(
    client: S3Client, backup_bucket: str, archive_key: str, target_bucket: str, journal: Journal
) -> int:
    """Option B: verify the archive end to end, then restore it."""
    with journal.step("Verify archive against manifest", f"{RUNBOOK_S3} · Option B") as step:
        inventory = verify_archive(client, backup_bucket, archive_key)
        step.detail = f"{len(inventory)} objects, archive and member checksums match"
    with journal.step("Restore objects from archive", f"{RUNBOOK_S3} · Option B") as step:
        written = restore_archive(client, backup_bucket, archive_key, target_bucket, inventory)
        step.detail = f"{written} objects written to s3://{target_bucket}"
    return written


def dr_restore(dr_copy: Location, primary: Location, journal: Journal) -> CopyReport:
    """Option C: copy what the primary lacks back from the DR region."""
    with journal.step("Copy from DR region", f"{RUNBOOK_S3} · Option C") as step:
        report = sync(dr_copy, primary)
        step.detail = f"{dr_copy.uri} → {primary.uri}: {report.describe()}"
    return report
