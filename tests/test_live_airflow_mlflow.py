"""Airflow's and MLflow's restores (restore procedure §3 and §4) on a live profile: a game
day whose platform is the Kubernetes API emulator over HTTP, with real processes behind its
pods (``fixtures.kube_pods``): scaling ``airflow-scheduler`` to 0 stops a real Airflow
scheduler, scaling it back starts one, ``kubectl exec`` runs in its configuration. The
databases are real PostgreSQL, seeded by the real Airflow and MLflow.

What must hold: the restore passes through the Kubernetes API alone (scale, watch, exec);
the smoke DAG failing after the restore fails the scenario (the control); a dry run sends
no mutating call, exec included; a missing verb is named before anything changes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtests.airflow.deployment import SAMPLE_DAGS, AirflowDeployment
from drtests.environments import Environment
from drtests.fixtures.airflow import AIRFLOW_TEMPLATE
from drtests.fixtures.metastore import database_clone
from drtests.fixtures.mlflow import MLFLOW_TEMPLATE
from drtests.mlflow.server import MlflowServer
from drtests.objectstore.replication import Location
from drtests.postgres import create_database, drop_database
from drtests.processes import ManagedProcess, http_ok
from fixtures.kube_pods import Container, ProcessPods
from fixtures.kubernetes import KubeEmulator, serve_emulator

pytest.importorskip("kubernetes")
pytest.importorskip("airflow")
pytest.importorskip("mlflow")
from kubernetes import client

from fixtures.kube_controllers import ClusterControllers, settled, workload

ROOT = Path(__file__).resolve().parents[1]
NS = "spark-operations"
#: the runbook's deployments, and Airflow 3's DAG processor (stopped "when present")
AIRFLOW = ("airflow-scheduler", "airflow-web", "airflow-worker", "airflow-dag-processor")
MLFLOW = "mlflow-server"
#: the scenarios run: one restore of each application, and the control
AIRFLOW_RESTORE = "test_airflow_metadata_restore and delete-dag-runs"
MLFLOW_RESTORE = "test_mlflow_backend_store_restore and delete-runs"

pytestmark = pytest.mark.xdist_group("live-airflow-mlflow")

BROKEN_SMOKE = '''"""dr_smoke as a broken DAG repository has it: it loads, its task fails."""
from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _check() -> str:
    raise RuntimeError("the smoke check fails")


with DAG("dr_smoke", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    PythonOperator(task_id="smoke", python_callable=_check)
'''


@dataclass
class LivePlatform:
    """A platform as a live profile sees it, with a recorder on its Kubernetes API."""

    kube: KubeEmulator
    pods: ProcessPods
    airflow: AirflowDeployment
    env: Environment
    profile_text: str
    tmp: Path

    def profile(self, name: str, extra: str = "") -> Path:
        path = self.tmp / f"{name}.toml"
        path.write_text(self.profile_text + extra)
        return path

    def game_day(self, profile: Path, select: str, *flags: str) -> tuple[int, str]:
        argv = [sys.executable, "-m", "drtests.cli", "gameday", "--profile", str(profile)]
        argv += ["--report-dir", str(self.tmp / f"reports-{profile.stem}"), "-n", "0"]
        argv += ["-k", select, *flags]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
        env["HOME"] = str(self.tmp / "home")
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False
        )
        output = done.stdout + done.stderr
        (self.tmp / f"{profile.stem}.out").write_text(output)
        return done.returncode, output

    def replicas(self) -> dict[str, int]:
        apps = client.AppsV1Api(_api(self.kube.url))
        return {
            d.metadata.name: int(d.spec.replicas) for d in apps.list_namespaced_deployment(NS).items
        }


def _api(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def _airflow_pods(pods: ProcessPods, deployment: AirflowDeployment, logs: Path) -> None:
    """Scheduler (LocalExecutor: it runs the tasks), API server and DAG processor as their
    pods run them; the worker deployment's pods serve nothing here (a Celery worker would)."""
    env, home = deployment.env(), deployment.home

    def process(command: str) -> Callable[[str], ManagedProcess]:
        return lambda pod: ManagedProcess(
            pod, [sys.executable, "-m", "airflow", command], logs / f"{pod}.log", env=env
        )

    health = f"http://127.0.0.1:{deployment.scheduler_health_port}/health"
    pods.add(
        "airflow-scheduler", Container(env, home, process("scheduler"), lambda: http_ok(health))
    )  # type: ignore[arg-type]
    api = f"{deployment.api_url}/api/v2/monitor/health"
    pods.add(
        "airflow-web",
        Container(
            env, home, process("api-server"), lambda: http_ok(api), {8080: deployment.api_port}
        ),
    )  # type: ignore[arg-type]
    pods.add("airflow-dag-processor", Container(env, home, process("dag-processor")))  # type: ignore[arg-type]
    pods.add("airflow-worker", Container(env, home))


def _mlflow_pods(pods: ProcessPods, server: MlflowServer, logs: Path) -> None:
    pods.add(
        MLFLOW,
        Container(
            server.env(),
            logs,
            lambda pod: server.process(pod, logs),
            server.ready,
            {5000: server.port},
        ),
    )


@pytest.fixture(scope="module")
def live(
    dr_environment: Environment,
    airflow_template: AirflowDeployment,
    mlflow_template: Location,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LivePlatform]:
    env = dr_environment
    tmp = tmp_path_factory.mktemp("live-airflow")
    (tmp / "home").mkdir()
    s3 = env.s3_primary
    metastore = "live_airflow_metastore"
    create_database(env.postgres, metastore)
    with (
        serve_emulator() as kube,
        database_clone(env, AIRFLOW_TEMPLATE, "live_airflow") as airflow_db,
        database_clone(env, MLFLOW_TEMPLATE, "live_mlflow") as mlflow_db,
    ):
        # a home of its own: the control syncs a broken DAG into it
        home = Path(tempfile.mkdtemp(prefix="drtests-live-airflow-"))
        airflow = AirflowDeployment.create(home, env.postgres.dsn(airflow_db), SAMPLE_DAGS)
        server = MlflowServer(env.postgres.dsn(mlflow_db), s3, mlflow_template.uri)
        pods = ProcessPods()
        _airflow_pods(pods, airflow, tmp / "pods")
        _mlflow_pods(pods, server, tmp / "pods")
        kube.rules.pods = pods
        api = _api(kube.url)
        apps = client.AppsV1Api(api)
        for name in (*AIRFLOW, MLFLOW):
            apps.create_namespaced_deployment(NS, workload("deployment", NS, name, 1, name))
        controllers = ClusterControllers(api, NS, runtime=pods)
        try:
            settled(api, NS, len(AIRFLOW) + 1, timeout=240)
            kubeconfig = kube.kubeconfig(tmp / "kubeconfig")
            text = (
                f'name = "staging"\nenvironment = "live"\nstate_dir = "{tmp / "state"}"\n'
                f'[postgres.metastore]\ndsn = "{env.postgres.dsn(metastore)}"\n'
                f'[postgres.airflow]\ndsn = "{airflow.dsn}"\n'
                f'[postgres.mlflow]\ndsn = "{server.dsn}"\n'
                f'[s3.primary]\nendpoint_url = "{s3.endpoint_url}"\n'
                f'access_key_id = "{s3.access_key_id}"\n'
                f'secret_access_key = "{s3.secret_access_key}"\n'
                f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n'
                f"[services]\nnamespace = {NS!r}\nready_timeout_seconds = 240\n"
                f"[safety]\nallow_list = ['postgresql://127.0.0.1:{env.postgres.port}/*', "
                f"'{s3.endpoint_url}/*', 'k8s://test/*']\n"
                # no api_url, no tracking_url: both reached through port-forwards to their
                # pods, as from a machine outside the cluster
                "[mlflow]\n"
                "[airflow]\n"
            )
            yield LivePlatform(kube, pods, airflow, env, text, tmp)
        finally:
            controllers.close()
            pods.stop_all()
        # what the pods' processes forked (task runners, executor workers, log servers,
        # MLflow's uvicorn) ended with them: nothing of either outlives the module
        assert _processes_of(f"AIRFLOW_HOME={home}", f":{env.postgres.port}/{mlflow_db}") == []
    drop_database(env.postgres, metastore)


def _processes_of(*fragments: str) -> list[str]:
    """Live processes (not zombies) with one of ``fragments`` in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or "State:\tZ" in (entry / "status").read_text():
                continue
            environment = (entry / "environ").read_bytes()
            if any(f.encode() in environment for f in fragments):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def _passed(output: str) -> bool:
    return " passed" in output and " failed" not in output and " error" not in output


def test_a_dry_run_sends_no_mutating_call_not_even_an_exec(live: LivePlatform) -> None:
    before = len(live.kube.mutating_requests())
    _, output = live.game_day(
        live.profile("dry-run"),
        f"({AIRFLOW_RESTORE}) or ({MLFLOW_RESTORE})",
        "--dry-run",
        "--allow-destructive",
    )
    assert "Traceback" not in output
    assert live.kube.mutating_requests()[before:] == [], output[-3000:]
    assert "dry-run plan (nothing was written):" in output, output[-3000:]
    assert "write an Airflow backup" in output


def test_a_missing_verb_is_named_before_anything_changes(live: LivePlatform) -> None:
    live.kube.rules.denied.add(("create", "pods/exec"))
    before = len(live.kube.mutating_requests())
    try:
        code, output = live.game_day(
            live.profile("no-exec"), AIRFLOW_RESTORE, "--allow-destructive"
        )
    finally:
        live.kube.rules.denied.clear()
    assert code != 0
    assert "may not create pods/exec" in output, output[-3000:]
    assert "nothing was changed" in output
    assert live.kube.mutating_requests()[before:] == []
    assert "Traceback" not in output


def test_airflow_restore_on_kubernetes(live: LivePlatform) -> None:
    """§3 through the API: scaled to 0 and back with remembered replicas, DagBag() and
    ``airflow db check`` run in the scheduler's pod, the smoke DAG run end to end."""
    before = len(live.kube.requests())
    execs = len(live.pods.execs)
    code, output = live.game_day(live.profile("airflow"), AIRFLOW_RESTORE, "--allow-destructive")
    assert code == 0 and _passed(output), output[-4000:]
    calls = live.kube.requests()[before:]
    for name in AIRFLOW:
        assert ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale") in calls
    probes = [(pod, argv) for pod, argv in live.pods.execs[execs:] if "DagBag" in " ".join(argv)]
    assert probes and all(pod.startswith("airflow-scheduler-") for pod, _ in probes)
    forwarded = {p.split("/")[-2] for m, p in calls if m == "PORTFORWARD"}
    assert forwarded and all(pod.startswith("airflow-web-") for pod in forwarded), calls
    assert len(forwarded) >= 2, "the API was not reached again in the restarted pod"
    assert live.replicas() == {**{n: 1 for n in AIRFLOW}, MLFLOW: 1}


def test_mlflow_restore_on_kubernetes(live: LivePlatform) -> None:
    before = len(live.kube.requests())
    code, output = live.game_day(live.profile("mlflow"), MLFLOW_RESTORE, "--allow-destructive")
    assert code == 0 and _passed(output), output[-4000:]
    scale = ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{MLFLOW}/scale")
    calls = live.kube.requests()[before:]
    assert calls.count(scale) == 2
    forwarded = {p.split("/")[-2] for m, p in calls if m == "PORTFORWARD"}
    assert len(forwarded) >= 2 and all(pod.startswith(f"{MLFLOW}-") for pod in forwarded)
    assert live.replicas()[MLFLOW] == 1


def test_a_smoke_dag_failing_after_the_restore_fails_the_scenario(live: LivePlatform) -> None:
    """The control: the DAG repository the runbook syncs from has a dr_smoke whose task
    fails; the restore syncs it into the scheduler's pod, and the scenario must fail at the
    end-to-end run (last in the module: the broken DAG stays in the pods' DAG folder)."""
    dags = live.tmp / "broken-dags"
    dags.mkdir()
    for path in SAMPLE_DAGS.glob("*.py"):
        (dags / path.name).write_bytes(path.read_bytes())
    (dags / "dr_smoke.py").write_text(BROKEN_SMOKE)
    profile = live.profile("broken-dags", f'dags_folder = "{dags}"\n')
    code, output = live.game_day(profile, AIRFLOW_RESTORE, "--allow-destructive")
    assert code == 1, output[-4000:]
    assert "dr_smoke" in output and "ended failed" in output, output[-4000:]
    assert (live.airflow.dags_folder / "dr_smoke.py").read_text() == BROKEN_SMOKE
    assert live.replicas() == {**{n: 1 for n in AIRFLOW}, MLFLOW: 1}
