"""Airflow and MLflow as the suite starts them: missing installs named with their fix,
secrets kept off command lines and out of error messages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from drtests.airflow.deployment import AirflowDeployment, require_airflow
from drtests.errors import EnvironmentUnavailable
from drtests.mlflow.server import MlflowServer, require_mlflow
from drtests.objectstore import S3Endpoint
from drtests.platform.local import LocalPlatform
from drtests.processes import free_port

PASSWORD = "s3cr3t-pa55"


def test_missing_applications_name_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(EnvironmentUnavailable, match=r"pip install 'drtests\[airflow\]'"):
        require_airflow()
    with pytest.raises(EnvironmentUnavailable, match=r"pip install 'drtests\[mlflow\]'"):
        require_mlflow()


def test_mlflow_server_gets_its_backend_store_through_the_environment(tmp_path: Path) -> None:
    s3 = S3Endpoint("primary", "http://127.0.0.1:9", "us-east-1", "key", "secret")
    server = MlflowServer(f"postgresql://u:{PASSWORD}@127.0.0.1:5/mlflow", s3, "s3://b/p/")
    process = server.process("mlflow-server", tmp_path)
    assert not any(PASSWORD in arg for arg in process.argv)
    assert process.env is not None
    assert process.env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")


def test_airflow_cli_on_an_unreachable_database_fails_clearly_without_the_password(
    tmp_path: Path,
) -> None:
    pytest.importorskip("airflow", reason="Airflow is not installed")
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/airflow"
    deployment = AirflowDeployment.create(tmp_path / "home", dsn)
    with pytest.raises(EnvironmentUnavailable, match="airflow db check exited") as caught:
        deployment.cli("db", "check", timeout=120)
    assert PASSWORD not in str(caught.value)
    deployment.add_to(LocalPlatform(tmp_path), tmp_path)
    assert len(deployment.processes) == 3
    assert not any(PASSWORD in arg for p in deployment.processes.values() for arg in p.argv)
