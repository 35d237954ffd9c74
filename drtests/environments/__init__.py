"""Environments yield the same handles, whatever runs the services: the embedded local
servers, containers, or a live platform."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from drtests.config import Profile
from drtests.errors import EnvironmentUnavailable
from drtests.objectstore import S3Endpoint
from drtests.postgres import LocalPostgres, PostgresEndpoint


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
    #: the server process itself, where this run owns it (embedded environment)
    postgres_server: LocalPostgres | None = None

    def pg_target(self, database: str) -> str:
        return f"postgresql://{self.postgres.host}:{self.postgres.port}/{database}"

    def targets(self) -> list[str]:
        if self.ephemeral_targets:
            return sorted(self.ephemeral_targets)
        items = [self.pg_target(self.metastore_database), self.s3_primary.describe()]
        if self.s3_dr is not None:
            items.append(self.s3_dr.describe())
        return items


SUPPORTED = ("local", "live")


def ensure_supported(kind: str) -> None:
    """Fail before anything starts when an environment kind is not available."""
    if kind not in SUPPORTED:
        raise EnvironmentUnavailable(
            f"the {kind} environment is not part of this version; use --dr-env local or live"
        )


@contextmanager
def open_environment(profile: Profile, workdir: Path) -> Iterator[Environment]:
    if profile.environment == "local":
        from drtests.environments.local import local_environment

        with local_environment(profile, workdir) as env:
            yield env
    elif profile.environment == "live":
        from drtests.environments.live import live_environment

        yield live_environment(profile, workdir)
    else:
        ensure_supported(profile.environment)
