"""Where a restore test restores: a scratch PostgreSQL server, never a source. Either the
one the profile names (``[restore_test] scratch_dsn``), shared across nights, where each
run writes databases of its own named ``drtests_rt_<run>_<component>`` and ledgers them
before they exist; or one the run starts itself and removes (the embedded PostgreSQL, or a
container in containers mode), which takes everything with it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from drtests.config import RestoreTestSettings
from drtests.errors import EndpointUnreachable, EnvironmentUnavailable
from drtests.postgres import LocalPostgres, PostgresEndpoint, connect, pg_bin_dir

#: every scratch database's name starts with this, on a shared scratch server too
DATABASE_PREFIX = "drtests_rt_"

StartServer = Callable[[Path], AbstractContextManager[PostgresEndpoint]]


@dataclass(frozen=True)
class ScratchServer:
    endpoint: PostgresEndpoint
    #: started by this run and gone with it
    owned: bool
    #: this run's part of every scratch database name
    token: str

    @property
    def where(self) -> str:
        return f"postgresql://{self.endpoint.host}:{self.endpoint.port}/"

    def database_for(self, component: str) -> str:
        return f"{DATABASE_PREFIX}{self.token}_{component}"

    def describe(self) -> str:
        kind = "started by this run" if self.owned else "named by the profile"
        return f"scratch PostgreSQL {self.endpoint.host}:{self.endpoint.port} ({kind})"


@contextmanager
def embedded_server(workdir: Path) -> Iterator[PostgresEndpoint]:
    """The embedded PostgreSQL 18, for this run only."""
    server = LocalPostgres(workdir / "scratch-postgres", name="scratch-postgres")
    try:
        server.init()
        server.start()
        yield server.endpoint
    finally:
        server.stop()


@contextmanager
def scratch_server(
    settings: RestoreTestSettings,
    workdir: Path,
    start: StartServer = embedded_server,
    token: str | None = None,
) -> Iterator[ScratchServer]:
    """``token`` names this run in its databases (the run id's suffix; random without)."""
    token = token or secrets.token_hex(3)
    if settings.scratch_dsn is None:
        with start(workdir) as endpoint:
            yield ScratchServer(endpoint, True, token)
        return
    endpoint, database = PostgresEndpoint.from_dsn(
        settings.scratch_dsn.get_secret_value(), pg_bin_dir()
    )
    try:
        with connect(endpoint, database) as conn:
            row = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except EndpointUnreachable as exc:
        raise EndpointUnreachable(f"restore_test.scratch_dsn: {exc}") from None
    if not row or not row[0]:
        raise EnvironmentUnavailable(
            f"restore_test.scratch_dsn: user {endpoint.user!r} may not create databases on "
            f"{endpoint.host}:{endpoint.port} (needs CREATEDB)"
        )
    yield ScratchServer(endpoint, False, token)
