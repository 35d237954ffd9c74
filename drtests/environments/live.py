"""A live platform: endpoints and credentials come from the profile; nothing is started."""

from __future__ import annotations

from pathlib import Path

from drtests.config import Profile, S3Target
from drtests.environments import Environment
from drtests.objectstore import S3Endpoint
from drtests.postgres import PostgresEndpoint, pg_bin_dir


def s3_endpoint(name: str, target: S3Target) -> S3Endpoint:
    return S3Endpoint(
        name,
        target.endpoint_url,
        target.region,
        target.access_key_id.get_secret_value() if target.access_key_id else None,
        target.secret_access_key.get_secret_value() if target.secret_access_key else None,
    )


def live_environment(profile: Profile, workdir: Path) -> Environment:
    endpoint, database = PostgresEndpoint.from_dsn(
        profile.postgres["metastore"].dsn.get_secret_value(), pg_bin_dir()
    )
    dr = profile.s3.get("dr")
    return Environment(
        kind="live",
        postgres=endpoint,
        metastore_database=database,
        s3_primary=s3_endpoint("primary", profile.s3["primary"]),
        s3_dr=s3_endpoint("dr", dr) if dr else None,
        workdir=workdir,
    )
