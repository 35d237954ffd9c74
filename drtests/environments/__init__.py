"""Environments yield the same handles, whatever runs the services: the embedded local
servers, containers, or a live platform."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drtests.config import Profile
from drtests.errors import EnvironmentUnavailable
from drtests.objectstore import S3Endpoint, ensure_bucket
from drtests.postgres import PostgresEndpoint
from drtests.processes import Supervised

if TYPE_CHECKING:
    from drtests.safety import WriteGate

#: environments whose servers this run starts, seeds and removes
OWNED = ("local", "containers")


class DatabaseServer(Protocol):
    """The PostgreSQL server itself, where this run owns it: a local process or a
    container, stopped, started and killed as a pod would be."""

    @property
    def process(self) -> Supervised | None: ...

    @property
    def endpoint(self) -> PostgresEndpoint: ...

    def accepting(self) -> bool: ...

    def start(self, timeout: float = 30) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Environment:
    kind: str
    postgres: PostgresEndpoint
    metastore_database: str
    s3_primary: S3Endpoint
    s3_dr: S3Endpoint | None
    workdir: Path
    #: targets created by this run, safe to break without further confirmation
    ephemeral_targets: set[str] = field(default_factory=set)
    #: the server itself, where this run owns it
    postgres_server: DatabaseServer | None = None
    #: what runs the servers, for the evidence (engine and images in containers mode)
    description: str = ""
    #: starts one more PostgreSQL server of this environment's kind, for scratch work (a
    #: restore test's target); None: the embedded one
    start_scratch_server: Callable[[Path], AbstractContextManager[PostgresEndpoint]] | None = None

    @property
    def owned(self) -> bool:
        """Started by this run, so it may be seeded, broken and thrown away at will."""
        return self.kind in OWNED

    def pg_target(self, database: str) -> str:
        return f"postgresql://{self.postgres.host}:{self.postgres.port}/{database}"

    def targets(self) -> list[str]:
        if self.ephemeral_targets:
            return sorted(self.ephemeral_targets)
        items = [self.pg_target(self.metastore_database), self.s3_primary.describe()]
        if self.s3_dr is not None:
            items.append(self.s3_dr.describe())
        return items


def owned_environment(
    kind: str,
    profile: Profile,
    server: DatabaseServer,
    primary: S3Endpoint,
    dr: S3Endpoint,
    workdir: Path,
) -> Environment:
    """An environment this run started: its buckets made in both regions, and every one of
    its servers among the targets it may break without further confirmation."""
    postgres = server.endpoint
    buckets = (*profile.buckets.data, profile.buckets.backups)
    primary_client, dr_client = primary.client(), dr.client()
    for bucket in buckets:
        ensure_bucket(primary_client, bucket)
        ensure_bucket(dr_client, bucket + profile.buckets.dr_suffix)
    env = Environment(
        kind=kind,
        postgres=postgres,
        metastore_database=profile.metastore.database,
        s3_primary=primary,
        s3_dr=dr,
        workdir=workdir,
        postgres_server=server,
    )
    env.ephemeral_targets = {
        f"postgresql://{postgres.host}:{postgres.port}/*",
        *(f"{primary.describe()}/{b}" for b in buckets),
        *(f"{dr.describe()}/{b}{profile.buckets.dr_suffix}" for b in buckets),
    }
    return env


SUPPORTED = ("local", "containers", "live")


def ensure_supported(kind: str) -> None:
    """Fail before anything starts when an environment kind is not available."""
    if kind not in SUPPORTED:
        raise EnvironmentUnavailable(
            f"unknown environment {kind!r}: use --dr-env local, containers or live"
        )
    if kind == "containers":
        try:
            import testcontainers  # noqa: F401
        except ImportError:
            raise EnvironmentUnavailable(
                "containers mode needs testcontainers: pip install 'drtests[containers]'"
            ) from None


@contextmanager
def open_environment(
    profile: Profile, workdir: Path, gate: WriteGate | None = None
) -> Iterator[Environment]:
    """The run's environment; ``gate`` guards the writes to a live one (an owned one is
    the run's own to break)."""
    if profile.environment == "local":
        from drtests.environments.local import local_environment

        with local_environment(profile, workdir) as env:
            yield env
    elif profile.environment == "containers":
        from drtests.environments.containers import containers_environment

        with containers_environment(profile, workdir) as env:
            yield env
    elif profile.environment == "live":
        from drtests.environments.live import live_environment

        yield live_environment(profile, workdir, gate)
    else:
        ensure_supported(profile.environment)
