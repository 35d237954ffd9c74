"""The embedded environment: a real PostgreSQL 18 server and two moto S3 servers (primary
and DR region) as child processes of this run, gone when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from drtests.config import Profile
from drtests.environments import Environment, owned_environment
from drtests.objectstore import LocalS3Server
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
        yield owned_environment("local", profile, pg, primary, dr, workdir)
