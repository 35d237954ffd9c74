"""Containers mode: PostgreSQL and two S3 regions as containers of a Docker-API engine,
created for this run and removed at its end (and by the next run, if this one is killed).

The platform's workloads (metastore service, Airflow, MLflow, the real HMS) run as in the
embedded environment, against the containers; the database server is a container the
scenarios kill and restart as a pod."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from drtests.config import Profile
from drtests.containers.engine import find_engine
from drtests.containers.postgres import PostgresServerContainer
from drtests.containers.s3 import S3ServerContainer
from drtests.containers.workload import remove_leftovers, run_labels
from drtests.environments import Environment, owned_environment
from drtests.postgres import PostgresEndpoint


@contextmanager
def containers_environment(profile: Profile, workdir: Path) -> Iterator[Environment]:
    settings = profile.containers
    with ExitStack() as stack:
        engine = find_engine(settings.docker_host, workdir / "engine")
        stack.callback(engine.close)
        engine.configure_testcontainers()
        remove_leftovers(engine.client())
        labels = run_labels()
        limits = (settings.ready_timeout_s, settings.pull_timeout_s)
        pg = PostgresServerContainer(engine, settings.postgres_image, labels, *limits)
        stack.callback(pg.remove)
        pg.create()
        servers = {
            name: S3ServerContainer(engine, name, settings.s3_image, labels, *limits)
            for name in ("primary", "dr")
        }
        for server in servers.values():
            stack.callback(server.remove)
            server.create()
        primary = servers["primary"].endpoint("us-east-1")
        dr = servers["dr"].endpoint("us-west-2")
        env = owned_environment("containers", profile, pg, primary, dr, workdir)
        env.description = f"containers on {engine.describe()}: {pg.image}, {settings.s3_image}"

        @contextmanager
        def scratch_server(_: Path) -> Iterator[PostgresEndpoint]:
            server = PostgresServerContainer(engine, settings.postgres_image, labels, *limits)
            try:
                server.create()
                yield server.endpoint
            finally:
                server.remove()

        env.start_scratch_server = scratch_server
        yield env
