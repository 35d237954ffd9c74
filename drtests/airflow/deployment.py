"""An Airflow deployment on the embedded environment: the real ``apache-airflow-core`` run
as its Kubernetes deployments would run it (scheduler with its LocalExecutor workers, API
server, DAG processor), one home directory per deployment, configured through environment
variables only so that secrets never reach a command line or a log."""

from __future__ import annotations

import importlib.util
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg

from drtests.errors import EnvironmentUnavailable
from drtests.platform.local import LocalPlatform
from drtests.processes import ManagedProcess, free_port, http_ok
from drtests.redaction import Redactor

#: the sample DAGs shipped with the suite: the "/local/dags/" of the runbook's DAG sync
SAMPLE_DAGS = Path(__file__).parent / "dags"
#: workload name → ``airflow`` sub-command, locally
LOCAL_COMPONENTS = {
    "airflow-scheduler": "scheduler",
    "airflow-web": "api-server",
    "airflow-dag-processor": "dag-processor",
}
INSTALL_HINT = "pip install 'drtests[airflow]' (apache-airflow-core, asyncpg, psycopg2-binary)"


def require_airflow() -> None:
    """Airflow is an optional extra: say how to install it instead of failing on import."""
    if importlib.util.find_spec("airflow") is None:
        raise EnvironmentUnavailable(f"Airflow is not installed: {INSTALL_HINT}")


@dataclass(frozen=True)
class ProbeResult:
    """What Airflow itself says about its installation and its DAG folder."""

    version: str
    heads: tuple[str, ...]
    previous_revision: str | None
    dag_ids: tuple[str, ...]
    import_errors: dict[str, str]
    #: why ``airflow db check`` would fail; empty when the database answers
    db_error: str = ""

    @classmethod
    def from_line(cls, line: str) -> ProbeResult:
        """The JSON line ``drtests.airflow.probe`` prints."""
        data: dict[str, Any] = json.loads(line)
        return cls(
            version=data["version"],
            heads=tuple(data["heads"]),
            previous_revision=data["previous_revision"],
            dag_ids=tuple(data["dag_ids"]),
            import_errors=dict(data["import_errors"]),
            db_error=str(data["db_error"]),
        )


class AirflowInstallation(Protocol):
    """What the restore procedure and the checks ask of an Airflow, wherever it runs: its
    metadata database, its API, and its own interpreter (a local process, or a pod)."""

    @property
    def dsn(self) -> str: ...

    @property
    def api_url(self) -> str: ...

    @property
    def runs_in(self) -> str | None:
        """The workload whose pod runs Airflow's interpreter (it must be running to be
        asked); None: a process of its own."""

    def probe(self) -> ProbeResult: ...

    def sync_dags(self, source: Path) -> list[str]: ...


@dataclass
class AirflowDeployment:
    home: Path
    dsn: str
    api_port: int = field(default_factory=free_port)
    scheduler_health_port: int = field(default_factory=free_port)
    log_server_port: int = field(default_factory=free_port)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @classmethod
    def create(cls, home: Path, dsn: str, dags: Path = SAMPLE_DAGS) -> AirflowDeployment:
        """A fresh home with a copy of ``dags``; ``dsn`` is a ``postgresql://`` URI."""
        require_airflow()
        home.mkdir(parents=True, exist_ok=True)
        deployment = cls(home, dsn)
        deployment.sync_dags(dags)
        return deployment

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def runs_in(self) -> str | None:
        return None

    def with_database(self, dsn: str) -> AirflowDeployment:
        """The same home and DAGs on another metadata database (fresh ports and processes)."""
        return AirflowDeployment(self.home, dsn)

    # ------------------------------------------------------------ configuration

    def env(self) -> dict[str, str]:
        import os

        conn = "postgresql+psycopg2://" + self.dsn.split("://", 1)[1]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PG"))}
        return {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # local only: every API caller is an admin, as behind the cluster's own auth
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
                self.scheduler_health_port
            ),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }

    def _redact(self, text: str) -> str:
        password = self.dsn.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        return Redactor([self.dsn, password, self.jwt_secret])(text)

    # ------------------------------------------------------------ Airflow's own interfaces

    def cli(self, *args: str, timeout: float = 300) -> str:
        """``airflow <args>`` with this deployment's configuration; its output, or a clear
        error with the last lines Airflow printed."""
        return self._run([sys.executable, "-m", "airflow", *args], " ".join(args), timeout)

    def cli_batch(self, *commands: tuple[str, ...], timeout: float = 600) -> str:
        """Several ``airflow`` commands in one interpreter (``drtests.airflow.batch``):
        the same CLI code, one Airflow start-up instead of one per command."""
        argv = [sys.executable, "-m", "drtests.airflow.batch", json.dumps(commands)]
        return self._run(argv, "; ".join(" ".join(c) for c in commands), timeout)

    def _run(self, argv: list[str], what: str, timeout: float) -> str:
        try:
            done = subprocess.run(
                argv, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            message = f"airflow {what} still running after {timeout:.0f}s"
            raise EnvironmentUnavailable(message) from None
        output = self._redact(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = " | ".join(output.strip().splitlines()[-3:])
            raise EnvironmentUnavailable(f"airflow {what} exited {done.returncode}: {tail}")
        return output

    def probe(self) -> ProbeResult:
        """Airflow's version, migration heads and DagBag, from Airflow's own interpreter."""
        argv = [sys.executable, "-m", "drtests.airflow.probe"]
        done = subprocess.run(
            argv, env=self.env(), capture_output=True, text=True, timeout=300, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = " | ".join(self._redact(done.stderr).strip().splitlines()[-3:])
            raise EnvironmentUnavailable(f"Airflow probe failed: {tail}")
        return ProbeResult.from_line(lines[-1])

    def seed(self, runs: Sequence[tuple[str, str]]) -> None:
        """A new metadata database as a deployment's first start leaves it: migrated, the
        DAG folder serialized, and one complete run per (DAG, logical date)."""
        self.cli_batch(
            ("db", "migrate"),
            ("dags", "reserialize"),
            *(("dags", "test", dag_id, logical_date) for dag_id, logical_date in runs),
        )

    def sync_dags(self, source: Path) -> list[str]:
        """The runbook's DAG sync: copy the DAG files that are missing or differ; returns
        their names."""
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        copied = []
        for path in sorted(source.glob("*.py")):
            dest = self.dags_folder / path.name
            if not dest.exists() or dest.read_bytes() != path.read_bytes():
                shutil.copyfile(path, dest)
                copied.append(path.name)
        return copied

    # ------------------------------------------------------------ components

    def add_to(self, platform: LocalPlatform, workdir: Path) -> None:
        """Register the components as workloads under their deployment names."""
        for name, command in LOCAL_COMPONENTS.items():
            process = ManagedProcess(
                name,
                [sys.executable, "-m", "airflow", command],
                workdir / f"{name}.log",
                env=self.env(),
            )
            self.processes[name] = process
            platform.add_process(name, process, self._probe_for(command, process))

    def _probe_for(self, command: str, process: ManagedProcess) -> Callable[[], bool]:
        if command == "api-server":
            return lambda: http_ok(f"{self.api_url}/api/v2/monitor/health")
        if command == "scheduler":
            return lambda: http_ok(f"http://127.0.0.1:{self.scheduler_health_port}/health")
        return lambda: self._heartbeat_since("DagProcessorJob", process.started_at)

    def _heartbeat_since(self, job_type: str, started_at: float | None) -> bool:
        """A component without a health endpoint is ready when its job heartbeats."""
        if started_at is None:
            return False
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                row = conn.execute(
                    "SELECT max(extract(epoch FROM latest_heartbeat)) FROM job "
                    "WHERE job_type = %s AND state = 'running'",
                    (job_type,),
                ).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0] is not None and float(row[0]) >= started_at)
