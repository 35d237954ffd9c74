"""A live platform: endpoints and credentials come from the profile; nothing is started."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from drtests.config import Profile, S3Target
from drtests.environments import Environment
from drtests.objectstore import S3Endpoint
from drtests.postgres import PostgresEndpoint, pg_bin_dir

if TYPE_CHECKING:
    from drtests.safety import WriteGate


def s3_endpoint(name: str, target: S3Target, gate: WriteGate | None = None) -> S3Endpoint:
    return S3Endpoint(
        name,
        target.endpoint_url,
        target.region,
        target.access_key_id.get_secret_value() if target.access_key_id else None,
        target.secret_access_key.get_secret_value() if target.secret_access_key else None,
        gate,
    )


def live_environment(profile: Profile, workdir: Path, gate: WriteGate | None = None) -> Environment:
    """The profile's targets; with ``gate`` (the run's safety rails) every S3 write passes
    the rails first, and PostgreSQL sessions are read-only where the rails allow no write."""
    endpoint, database = PostgresEndpoint.from_dsn(
        profile.postgres["metastore"].dsn.get_secret_value(), pg_bin_dir()
    )
    dr = profile.s3.get("dr")
    return Environment(
        kind="live",
        postgres=replace(endpoint, gate=gate),
        metastore_database=database,
        s3_primary=s3_endpoint("primary", profile.s3["primary"], gate),
        s3_dr=s3_endpoint("dr", dr, gate) if dr else None,
        workdir=workdir,
    )
