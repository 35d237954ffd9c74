"""PostgreSQL as a container (testcontainers' ``PostgresContainer``): its data on a named
volume so that a kill or restart keeps it, published on 127.0.0.1 at a fixed port so that
clients find it again after a restart."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING

from drtests.containers.workload import ServiceContainer, publish_on_loopback
from drtests.errors import EnvironmentUnavailable
from drtests.postgres import (
    PostgresEndpoint,
    accepting_connections,
    pg_bin_dir,
    readiness_probe,
)
from drtests.processes import free_port

if TYPE_CHECKING:
    from testcontainers.community.postgres import PostgresContainer

    from drtests.containers.engine import ContainerEngine

DATA_DIR = "/var/lib/postgresql/data"
# the embedded server's settings: a test server, fast rather than crash-safe against the
# machine's own power loss (a killed server still recovers everything it acknowledged)
SERVER_SETTINGS = ("fsync=off", "max_connections=60", "shared_buffers=64MB")


def _postgres_container_class() -> type[PostgresContainer]:
    from testcontainers.community.postgres import PostgresContainer

    class _Container(PostgresContainer):
        """Readiness is the server's, from the host, with a bounded wait (see ``start``)."""

        def _connect(self) -> None:
            pass

    return _Container


class PostgresServerContainer(ServiceContainer):
    """The metastore's PostgreSQL server in a container, owned by this run."""

    def __init__(
        self,
        engine: ContainerEngine,
        image: str,
        labels: dict[str, str],
        ready_timeout: float,
        pull_timeout: float,
    ) -> None:
        super().__init__(engine, image, labels, ready_timeout, pull_timeout)
        self.password = secrets.token_urlsafe(16)
        self.port = free_port()
        self.volume = f"drtests-pgdata-{uuid.uuid4().hex[:12]}"
        self.bin_dir = pg_bin_dir()

    @property
    def endpoint(self) -> PostgresEndpoint:
        return PostgresEndpoint("127.0.0.1", self.port, "postgres", self.password, self.bin_dir)

    def accepting(self) -> bool:
        return accepting_connections(self.bin_dir, self.port)

    def create(self) -> None:
        """Create the volume and the container and start it; ready within the bounded wait."""
        from docker.errors import DockerException

        self._ensure_image()
        try:
            self.engine.client().volumes.create(self.volume, labels=self.labels)
        except DockerException as exc:
            raise EnvironmentUnavailable(f"cannot create volume {self.volume}: {exc}") from None
        container = _postgres_container_class()(
            self.image, username="postgres", password=self.password, dbname="postgres"
        )
        publish_on_loopback(container, 5432, self.port)
        container.with_name(self.volume.replace("pgdata", "postgres"))
        container.with_volume_mapping(self.volume, DATA_DIR, "rw")
        container.with_command(["postgres", *(f"-c{s}" for s in SERVER_SETTINGS)])
        self._launch(container, "postgres", "PostgreSQL", readiness_probe(self.bin_dir, self.port))

    def start(self, timeout: float = 30) -> None:
        if self.process is None:
            self.create()
            return
        self.process.start()
        self.process.wait_ready(
            readiness_probe(self.bin_dir, self.port), max(timeout, self.ready_timeout)
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def remove(self) -> None:
        """The container and its volume: nothing of this server is left on the engine."""
        from docker.errors import DockerException, NotFound

        super().remove()
        try:
            self.engine.client().volumes.get(self.volume).remove(force=True)
        except NotFound:
            pass
        except DockerException as exc:
            raise EnvironmentUnavailable(f"cannot remove volume {self.volume}: {exc}") from None
