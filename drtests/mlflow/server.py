"""The MLflow tracking server as the platform's ``mlflow-server`` deployment runs it: the
backend store on PostgreSQL, artifacts proxied to an S3 bucket. Configured through
environment variables, so the database password never reaches a command line or a log."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from drtests.errors import EnvironmentUnavailable
from drtests.objectstore import S3Endpoint
from drtests.platform.local import LocalPlatform
from drtests.processes import ManagedProcess, free_port, http_ok

INSTALL_HINT = "pip install 'drtests[mlflow]'"


def require_mlflow() -> None:
    """MLflow is an optional extra: say how to install it instead of failing on import."""
    if importlib.util.find_spec("mlflow") is None:
        raise EnvironmentUnavailable(f"MLflow is not installed: {INSTALL_HINT}")


@dataclass
class MlflowServer:
    dsn: str
    s3: S3Endpoint
    artifact_root: str  # s3://bucket/prefix
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW", "AWS_", "PG"))}
        return {
            **base,
            # psycopg 3, the suite's own driver
            "MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg://" + self.dsn.split("://", 1)[1],
            "MLFLOW_ARTIFACTS_DESTINATION": self.artifact_root,
            "MLFLOW_S3_ENDPOINT_URL": self.s3.endpoint_url or "",
            "AWS_ACCESS_KEY_ID": self.s3.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_access_key or "",
            "AWS_DEFAULT_REGION": self.s3.region,
            # the server's background job runners are not part of what is restored
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }

    def process(self, name: str, workdir: Path) -> ManagedProcess:
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", "1"]
        return ManagedProcess(name, argv, workdir / f"{name}.log", env=self.env())

    def add_to(self, platform: LocalPlatform, name: str, workdir: Path) -> None:
        platform.add_process(name, self.process(name, workdir), self.ready)

    def ready(self) -> bool:
        return http_ok(f"{self.url}/health")
