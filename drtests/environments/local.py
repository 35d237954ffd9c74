"""The embedded environment: a real PostgreSQL 18 server and two moto S3 servers (primary
and DR region) as child processes of this run, gone when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from drtests.config import Profile
from drtests.environments import Environment
from drtests.objectstore import LocalS3Server, ensure_bucket
from drtests.postgres import LocalPostgres


@contextmanager
def local_environment(profile: Profile, workdir: Path) -> Iterator[Environment]:
    with ExitStack() as stack:
        pg = LocalPostgres(workdir / "postgres")
        stack.callback(pg.stop)
        pg.init()
        pg.start()
        servers = {name: LocalS3Server(workdir, name) for name in ("primary", "dr")}
        for server in servers.values():
            stack.callback(server.stop)
            server.start()
        primary = servers["primary"].endpoint("us-east-1")
        dr = servers["dr"].endpoint("us-west-2")
        primary_client, dr_client = primary.client(), dr.client()
        for bucket in (*profile.buckets.data, profile.buckets.backups):
            ensure_bucket(primary_client, bucket)
            ensure_bucket(dr_client, bucket + profile.buckets.dr_suffix)
        env = Environment(
            kind="local",
            postgres=pg.endpoint,
            metastore_database=profile.metastore.database,
            s3_primary=primary,
            s3_dr=dr,
            workdir=workdir,
            postgres_server=pg,
        )
        buckets = (*profile.buckets.data, profile.buckets.backups)
        env.ephemeral_targets = {
            f"postgresql://{pg.endpoint.host}:{pg.endpoint.port}/*",
            *(f"{primary.describe()}/{b}" for b in buckets),
            *(f"{dr.describe()}/{b}{profile.buckets.dr_suffix}" for b in buckets),
        }
        yield env
