"""S3 as a container: moto's server image, one container per region. Its objects live in
the server's memory, as with the embedded moto server; the S3 restore scenarios exercise
durability through versions, archives and the DR copy, not by restarting the server."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from drtests.containers.workload import ServiceContainer, publish_on_loopback
from drtests.objectstore import S3Endpoint
from drtests.processes import free_port, http_ok

if TYPE_CHECKING:
    from drtests.containers.engine import ContainerEngine

API_PORT = 5000


class S3ServerContainer(ServiceContainer):
    """One region's S3 endpoint in a container, owned by this run."""

    def __init__(
        self,
        engine: ContainerEngine,
        name: str,
        image: str,
        labels: dict[str, str],
        ready_timeout: float,
        pull_timeout: float,
    ) -> None:
        super().__init__(engine, image, labels, ready_timeout, pull_timeout)
        self.name = name
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, region: str) -> S3Endpoint:
        # moto accepts any credentials; these are fixed test keys, not secrets
        return S3Endpoint(self.name, self.url, region, "drtests-local", "drtests-local-key")

    def answers(self) -> bool:
        return http_ok(self.url + "/")

    def create(self) -> None:
        from testcontainers.core.container import DockerContainer

        self._ensure_image()
        container = DockerContainer(self.image)
        publish_on_loopback(container, API_PORT, self.port)
        container.with_name(f"drtests-s3-{self.name}-{uuid.uuid4().hex[:8]}")
        self._launch(container, f"s3-{self.name}", "the S3 server", self.answers)
