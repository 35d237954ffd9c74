"""S3 as a container: moto's server image, one container per region. Its objects live in
the server's memory, as with the embedded moto server; the S3 restore scenarios exercise
durability through versions, archives and the DR copy, not by restarting the server."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from drtests.containers.images import ensure_image
from drtests.containers.workload import ContainerWorkload, publish_on_loopback
from drtests.errors import EnvironmentUnavailable
from drtests.objectstore import S3Endpoint
from drtests.processes import free_port, http_ok

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

    from drtests.containers.engine import ContainerEngine

API_PORT = 5000


class S3ServerContainer:
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
        self.engine = engine
        self.name = name
        self.image = image
        self.labels = labels
        self.ready_timeout = ready_timeout
        self.pull_timeout = pull_timeout
        self.port = free_port()
        self.process: ContainerWorkload | None = None
        self._container: DockerContainer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, region: str) -> S3Endpoint:
        # moto accepts any credentials; these are fixed test keys, not secrets
        return S3Endpoint(self.name, self.url, region, "drtests-local", "drtests-local-key")

    def answers(self) -> bool:
        return http_ok(self.url + "/")

    def create(self) -> None:
        from docker.errors import DockerException
        from testcontainers.core.container import DockerContainer

        ensure_image(self.engine.client(), self.image, self.pull_timeout)
        container = DockerContainer(self.image)
        publish_on_loopback(container, API_PORT, self.port)
        container.with_name(f"drtests-s3-{self.name}-{uuid.uuid4().hex[:8]}")
        container.with_kwargs(labels=self.labels)
        self._container = container  # removed at the end even if its start fails
        try:
            container.start()
        except DockerException as exc:
            raise EnvironmentUnavailable(
                f"cannot start the S3 server from image {self.image}: {exc}"
            ) from None
        self.process = ContainerWorkload(f"s3-{self.name}", container.get_wrapped_container())
        self.process.wait_ready(self.answers, self.ready_timeout)

    def remove(self) -> None:
        from docker.errors import DockerException

        if self._container is not None:
            with contextlib.suppress(DockerException):
                self._container.stop(force=True, delete_volume=True)
