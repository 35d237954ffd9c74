"""Steps every database restore of the runbooks shares: keep a safety snapshot, stop and
restart the workloads that use the database. Choosing and staging the backup is
:mod:`drtests.procedures.staging`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from drtests.backups import BackupRecord
from drtests.errors import DRError
from drtests.killpoints import kill_point
from drtests.ledger import utcnow
from drtests.platform import Platform
from drtests.postgres import (
    PostgresEndpoint,
    connect,
    create_database,
    terminate_sessions,
)
from drtests.procedures.journal import Journal

SAFETY_SUFFIX = "__safety_"


class DumpTarget(Protocol):
    """A database restored from a pg_dump backup, and where downloads go."""

    pg: PostgresEndpoint
    database: str
    workdir: Path


@dataclass
class ServiceDatabase:
    """A service's metadata database (Airflow's, MLflow's) and the workloads using it."""

    pg: PostgresEndpoint
    database: str
    platform: Platform
    services: tuple[str, ...]
    workdir: Path
    ready_timeout: float = 300


@dataclass
class RestoreOutcome:
    backup: BackupRecord | None = None
    safety_snapshot: str | None = None
    rejected: list[str] = field(default_factory=list)
    remembered_replicas: dict[str, int] = field(default_factory=dict)


def check_target_ready(target: DumpTarget, platform: Platform, workloads: tuple[str, ...]) -> str:
    """Pre-Restore Checklist "Restore target environment ready": the database server answers
    and every workload the procedure will scale exists."""
    with connect(target.pg, "postgres") as conn:
        version = conn.execute("SHOW server_version").fetchone()
    counts = ", ".join(f"{name}={platform.replicas(name)}" for name in workloads)
    return f"PostgreSQL {version[0] if version else '?'} answers; replicas {counts}"


def take_safety_snapshot(target: DumpTarget) -> str:
    """An exact copy of the database as it is now (CREATE DATABASE … TEMPLATE), so a bad
    restore can be rolled back. Not a dump: a damaged database can hold rows that violate
    its own foreign keys, and pg_restore cannot put such a dump back."""
    snapshot = f"{target.database}{SAFETY_SUFFIX}{utcnow():%Y%m%d%H%M%S}"
    terminate_sessions(target.pg, target.database)
    create_database(target.pg, snapshot, template=target.database)
    return snapshot


def stop_workloads(
    platform: Platform, names: tuple[str, ...], journal: Journal, outcome: RestoreOutcome
) -> None:
    """Scale each workload to 0, remembering its replicas for the restart (in the outcome,
    and first in the fault ledger: a run killed now leaves the next run what to restore)."""
    for name in names:
        replicas = platform.replicas(name)
        outcome.remembered_replicas[name] = replicas
        journal.scaling_down(platform, name, replicas)
        platform.scale(name, 0)
        kill_point("after-scale-down")
        journal.status("service", name, False)


def start_workloads(
    platform: Platform,
    names: tuple[str, ...],
    replicas: dict[str, int],
    timeout: float,
    journal: Journal,
    *,
    after_failure: bool,
) -> str:
    """Scale the workloads back up and wait until they are ready. After a failed restore
    they are started all the same, but readiness is only reported, not awaited for the full
    timeout: a service on a still-damaged database may never become ready."""
    if after_failure:
        timeout = min(timeout, 2.0)
    for name in names:
        platform.scale(name, replicas.get(name, 1))
        journal.scaled_up(name)
    not_ready = []
    for name in names:
        try:
            platform.wait_ready(name, timeout)
            journal.status("service", name, True)
        except DRError as exc:
            if not after_failure:
                raise
            not_ready.append(f"{name} not ready ({exc})")
    return "; ".join(not_ready) or f"{', '.join(names)} ready"


def restart_service_workloads(
    target: ServiceDatabase, outcome: RestoreOutcome, journal: Journal, *, after_failure: bool
) -> str:
    return start_workloads(
        target.platform,
        target.services,
        outcome.remembered_replicas,
        target.ready_timeout,
        journal,
        after_failure=after_failure,
    )
