"""Reverting what an interrupted run left behind, from the fault ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drtests.config import Profile
from drtests.environments import OWNED
from drtests.environments.live import s3_endpoint
from drtests.errors import DRError
from drtests.faults import BucketTarget, DatabaseTarget, WorkloadTarget, fault_from_ledger
from drtests.faults.base import discard_undo
from drtests.ledger import FaultLedger
from drtests.objectstore import S3_ERRORS
from drtests.postgres import PostgresEndpoint, pg_bin_dir
from drtests.safety import DryRunStop, SafetyRails


def revert_leftovers(ledger: FaultLedger, profile: Profile, safety: SafetyRails) -> list[str]:
    """Revert each fault still pending in the ledger; returns one line per entry handled.

    Faults on an environment a run created (embedded servers, containers) died with the
    servers of that run; they are closed as discarded. Faults on a live target are reverted
    with the profile's credentials, within the same safety rails as any other write.
    """
    lines: list[str] = []
    for entry in ledger.entries():
        if entry.never_applied:
            where = f"{entry.fault_id} {entry.kind} on {describe_target(entry.target)}"
            if safety.dry_run:
                lines.append(f"{where}: would be closed (the run stopped before any change)")
                continue
            ledger.discarded(entry.fault_id, "killed before its undo record was written")
            lines.append(f"{where}: closed (the run stopped before it changed anything)")
    for entry in ledger.pending():
        target = entry.target
        where = describe_target(target)
        if target.get("environment") in OWNED:
            if safety.dry_run:
                lines.append(f"{entry.fault_id} {entry.kind} on {where}: would be discarded")
                continue
            ledger.discarded(entry.fault_id, "the servers of that run no longer exist")
            lines.append(
                f"{entry.fault_id} {entry.kind} on {where}: discarded "
                f"({target.get('environment')} environment of that run gone)"
            )
            continue
        resolved = _live_target(profile, target, safety)
        if resolved is None:
            lines.append(
                f"{entry.fault_id} {entry.kind} on {where}: still pending; "
                "the current profile does not reach that target"
            )
            continue
        try:
            fault = fault_from_ledger(entry.kind, entry.params)
        except (KeyError, TypeError) as exc:
            lines.append(
                f"{entry.fault_id} {entry.kind} on {where}: still pending; this version of "
                f"drtests cannot revert it ({type(exc).__name__}: {exc})"
            )
            continue
        try:
            safety.authorize(resolved.safety_name(), f"revert leftover fault {entry.kind}")
            detail = fault.revert(resolved, entry.undo)
        except DryRunStop:
            lines.append(f"{entry.fault_id} {entry.kind} on {where}: would be reverted")
            continue
        except (DRError, *S3_ERRORS) as exc:
            ledger.revert_failed(entry.fault_id, str(exc))
            lines.append(f"{entry.fault_id} {entry.kind} on {where}: revert failed: {exc}")
            continue
        ledger.reverted(entry.fault_id, detail)
        discard_undo(entry.undo)
        lines.append(f"{entry.fault_id} {entry.kind} on {where}: reverted ({detail})")
    return lines


def describe_target(target: dict[str, Any]) -> str:
    """Where a ledger entry's damage is: a database, a bucket, a workload."""
    if target.get("component") == "platform":
        where = f"{target.get('context', 'local')}/{target.get('namespace', '')}"
        return f"{where}/{target.get('workload')}"
    if target.get("component") == "objectstore":
        return f"{target.get('endpoint')}/{target.get('bucket')}"
    return f"{target.get('host')}:{target.get('port')}/{target.get('database')}"


def _live_target(
    profile: Profile, target: dict[str, Any], safety: SafetyRails
) -> DatabaseTarget | BucketTarget | WorkloadTarget | None:
    """The target of a ledger entry, reached with the current profile's credentials."""
    workdir = Path(profile.state_dir.absolute())
    if target.get("component") == "platform":
        return _live_workload(profile, target, safety)
    if target.get("component") == "objectstore":
        for name, setting in profile.s3.items():
            s3 = s3_endpoint(name, setting)
            if s3.describe() == target.get("endpoint"):
                return BucketTarget(s3, str(target.get("bucket")), "live", workdir)
        return None
    if target.get("component") == "restore-test-scratch":
        # a restore test's scratch database: on the profile's scratch server, whatever the
        # database its DSN names
        scratch = profile.restore_test.scratch_dsn
        if scratch is None:
            return None
        endpoint, _ = PostgresEndpoint.from_dsn(scratch.get_secret_value(), pg_bin_dir())
        if (endpoint.host, endpoint.port) != (target.get("host"), target.get("port")):
            return None
        return DatabaseTarget(
            endpoint, str(target.get("database")), "live", workdir, "restore-test-scratch"
        )
    pg = profile.postgres.get(str(target.get("component", "")))
    if pg is None:
        return None
    endpoint, database = PostgresEndpoint.from_dsn(pg.dsn.get_secret_value(), pg_bin_dir())
    if (endpoint.host, endpoint.port, database) != (
        target.get("host"),
        target.get("port"),
        target.get("database"),
    ):
        return None
    return DatabaseTarget(endpoint, database, "live", workdir, str(target["component"]))


def _live_workload(
    profile: Profile, target: dict[str, Any], safety: SafetyRails
) -> WorkloadTarget | None:
    """A workload a killed restore left scaled to 0, on the profile's cluster."""
    from drtests.platform.kubernetes import KubernetesPlatform

    settings = profile.kubernetes
    if not settings.enabled or target.get("namespace") != profile.services.namespace:
        return None
    try:
        platform = KubernetesPlatform.connect(
            profile.services.namespace,
            settings.workloads(profile.services),
            safety.authorize,
            kubeconfig=settings.kubeconfig,
            context=settings.context,
        )
    except DRError:
        return None
    if platform.context != target.get("context"):
        return None
    where = {"environment": "live", "context": platform.context, "namespace": platform.namespace}
    return WorkloadTarget(platform, str(target.get("workload")), where)
