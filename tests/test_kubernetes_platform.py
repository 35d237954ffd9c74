"""The Kubernetes platform against a Kubernetes API over real HTTP (kmock's emulator), and
against a real cluster when KUBECONFIG points to one. The emulator has no controllers: the
tests play them through the same API (status updates, replacement pods)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drtests.config import Profile, Safety
from drtests.errors import EnvironmentUnavailable, SafetyError
from drtests.platform.kubernetes import KubernetesPlatform
from drtests.platform.selectors import selector_matches
from drtests.safety import DryRunStop, SafetyRails
from fixtures.kubernetes import KubeEmulator

pytest.importorskip("kubernetes")
from kubernetes import client

NS = "spark-operations"
WORKLOADS = {
    "spark-hive-metastore": "statefulset",
    "spark-history-server": "deployment",
    "jupyter-connect": "deployment",
}


def _api(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def _rails(tmp_path: Path, *, allow: tuple[str, ...] = ("k8s://test/*",), **kw: Any) -> Any:
    profile = Profile(name="staging", environment="live", safety=Safety(allow_list=allow))
    return SafetyRails(profile, allow_destructive=True, plan_file=tmp_path / "plan.txt", **kw)


def _workload(kind: str, name: str, replicas: int, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if kind == "statefulset" else "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "main", "image": "example"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def _pod(name: str, app: str, uid: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": uid, "labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "example"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


@pytest.fixture
def cluster(kube_emulator: KubeEmulator) -> client.ApiClient:
    """The runbooks' namespace: the metastore StatefulSet and its dependants, running."""
    api = _api(kube_emulator.url)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_stateful_set(
        NS, _workload("statefulset", "spark-hive-metastore", 1, "hive-metastore")
    )
    apps.create_namespaced_deployment(
        NS, _workload("deployment", "spark-history-server", 2, "history")
    )
    apps.create_namespaced_deployment(NS, _workload("deployment", "jupyter-connect", 1, "jupyter"))
    core.create_namespaced_pod(NS, _pod("spark-hive-metastore-0", "hive-metastore", "uid-1"))
    core.create_namespaced_pod(NS, _pod("spark-history-server-a", "history", "uid-2"))
    return api


def _platform(url: str, authorize: Callable[[str, str], None]) -> KubernetesPlatform:
    return KubernetesPlatform(_api(url), NS, WORKLOADS, authorize, context="test")


def _later(delay: float, action: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_label_selectors_are_checked_on_the_client() -> None:
    assert selector_matches({"environment": "production", "app": "x"}, "environment=production")
    assert not selector_matches({"environment": "staging"}, "environment=production")
    assert selector_matches({"app": "x"}, "app=x,environment!=production")
    assert not selector_matches({}, "app")


def test_scale_down_and_back_restores_the_remembered_count(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    remembered = platform.replicas("spark-history-server")
    platform.scale("spark-history-server", 0)
    assert platform.replicas("spark-history-server") == 0
    platform.scale("spark-history-server", remembered)
    assert platform.replicas("spark-history-server") == 2
    platform.scale("spark-hive-metastore", 0)
    assert (
        client.AppsV1Api(cluster)
        .read_namespaced_stateful_set("spark-hive-metastore", NS)
        .spec.replicas
        == 0
    )
    assert ("PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/spark-hive-metastore") in (
        kube_emulator.mutating_requests()
    )


def test_wait_ready_follows_a_watch_until_replicas_are_ready(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    apps = client.AppsV1Api(cluster)
    apps.patch_namespaced_deployment_status("jupyter-connect", NS, {"status": {"readyReplicas": 0}})
    _later(
        0.4,
        lambda: apps.patch_namespaced_deployment_status(
            "jupyter-connect", NS, {"status": {"readyReplicas": 1}}
        ),
    )
    waited = platform.wait_ready("jupyter-connect", timeout=10)
    assert 0.3 <= waited < 10
    watches = [r for r in kube_emulator.handler if r.url.query.get("watch") in ("true", "True")]
    assert watches, "readiness must be awaited with a watch, not a sleep loop"


def test_wait_ready_times_out_with_a_clear_error(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    client.AppsV1Api(cluster).patch_namespaced_deployment_status(
        "jupyter-connect", NS, {"status": {"readyReplicas": 0}}
    )
    with pytest.raises(EnvironmentUnavailable, match="deployment/jupyter-connect not ready"):
        platform.wait_ready("jupyter-connect", timeout=1.5)


def test_pod_kill_recovery_is_measured_per_pod(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    core = client.CoreV1Api(cluster)

    def statefulset_controller() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            names = [p.metadata.name for p in core.list_namespaced_pod(NS).items]
            if "spark-hive-metastore-0" not in names:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # scheduling
        core.create_namespaced_pod(
            NS, _pod("spark-hive-metastore-0", "hive-metastore", "uid-9", ready=False)
        )
        time.sleep(0.3)  # readiness probe
        core.patch_namespaced_pod_status(
            "spark-hive-metastore-0",
            NS,
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        )

    controller = threading.Thread(target=statefulset_controller, daemon=True)
    controller.start()
    recovery = platform.kill_and_measure("spark-hive-metastore", timeout=15)
    controller.join()
    assert 0.15 <= recovery.rescheduled_s < recovery.ready_s < 15
    assert recovery.ready_s >= 0.45
    deletes = [r for r in kube_emulator.handler if str(r.method.value) == "DELETE"]
    assert deletes and all(r.url.query.get("gracePeriodSeconds") == "0" for r in deletes)


def test_spark_applications_deleted_by_label_only(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(cluster)
    for name, env in (("etl-daily", "production"), ("etl-test", "staging")):
        custom.create_namespaced_custom_object(
            "sparkoperator.k8s.io",
            "v1beta2",
            NS,
            "sparkapplications",
            {
                "apiVersion": "sparkoperator.k8s.io/v1beta2",
                "kind": "SparkApplication",
                "metadata": {"name": name, "namespace": NS, "labels": {"environment": env}},
                "spec": {},
            },
        )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    assert platform.delete_spark_applications("environment=production") == 1
    left = custom.list_namespaced_custom_object(
        "sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications"
    )["items"]
    assert [a["metadata"]["name"] for a in left] == ["etl-test"]


def test_test_spark_job_is_awaited_and_its_driver_log_kept(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    kube_emulator.handler[f"get /api/v1/namespaces/{NS}/pods/hms-smoke-driver/log"] << (
        b"SHOW DATABASES: 3 databases\nJob finished\n"
    )
    custom = client.CustomObjectsApi(cluster)
    _later(
        0.5,
        lambda: custom.patch_namespaced_custom_object_status(
            "sparkoperator.k8s.io",
            "v1beta2",
            NS,
            "sparkapplications",
            "hms-smoke",
            {"status": {"applicationState": {"state": "COMPLETED"}}},
        ),
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    manifest = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "hms-smoke", "namespace": NS},
        "spec": {"type": "Python", "mode": "cluster"},
    }
    result = platform.submit_test_job(manifest, timeout=10)
    assert result.state == "COMPLETED" and result.seconds >= 0.4
    assert "Job finished" in result.log


def test_cronjob_last_run_and_absence(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    client.BatchV1Api(cluster).create_namespaced_cron_job(
        NS,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "hive-metastore-backup", "namespace": NS},
            "spec": {
                "schedule": "0 2 * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
            },
            "status": {
                "lastScheduleTime": "2026-11-22T02:00:00Z",
                "lastSuccessfulTime": "2026-11-22T02:03:10Z",
            },
        },
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    run = platform.last_job_run("hive-metastore-backup")
    assert run is not None and run.succeeded and run.started_at.hour == 2
    assert platform.job_exists("hive-metastore-backup")
    assert not platform.job_exists("hive-metastore-consistency-check")


def _deny_pod_deletes(kube_emulator: KubeEmulator) -> None:
    """An RBAC role that may do everything the procedures need except delete pods."""

    def review(request: Any) -> dict[str, Any]:
        attrs = request.data["spec"]["resourceAttributes"]
        allowed = not (attrs["verb"] == "delete" and attrs["resource"] == "pods")
        return {**request.data, "status": {"allowed": allowed}}

    kube_emulator.handler["post /apis/authorization.k8s.io/v1/selfsubjectaccessreviews"] << review


def test_access_review_names_each_denied_verb(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    _deny_pod_deletes(kube_emulator)
    result = _platform(kube_emulator.url, _rails(tmp_path).authorize).access_review()
    assert result.error is None
    assert [(f.subject, f.detail) for f in result.findings] == [("delete pods", "denied")]


def test_dry_run_sends_no_mutating_call(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    rails = _rails(tmp_path, dry_run=True)
    platform = _platform(kube_emulator.url, rails.authorize)
    before = kube_emulator.mutating_requests()
    for action in (
        lambda: platform.scale("spark-hive-metastore", 0),
        lambda: platform.kill("spark-hive-metastore"),
        lambda: platform.submit_test_job({"metadata": {"name": "hms-smoke"}}, 5),
    ):
        with pytest.raises(DryRunStop):
            action()
    assert kube_emulator.mutating_requests() == before  # no POST, PUT, PATCH or DELETE
    plan = (tmp_path / "plan.txt").read_text()
    assert "scale statefulset/spark-hive-metastore to 0 on k8s://test/" in plan
    assert "kill pod (grace period 0) on k8s://test/spark-operations/pod/" in plan


def test_outside_the_allow_list_nothing_is_sent(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    rails = _rails(tmp_path, allow=("k8s://other-cluster/*",))
    platform = _platform(kube_emulator.url, rails.authorize)
    before = kube_emulator.mutating_requests()
    with pytest.raises(SafetyError, match="not on the allow-list"):
        platform.scale("jupyter-connect", 0)
    assert kube_emulator.mutating_requests() == before


def test_unreachable_api_server_is_one_clear_error(tmp_path: Path) -> None:
    from drtests.processes import free_port

    platform = _platform(f"http://127.0.0.1:{free_port()}", _rails(tmp_path).authorize)
    platform.api.configuration.retries = 0
    with pytest.raises(EnvironmentUnavailable, match="unreachable"):
        platform.replicas("jupyter-connect")


def test_unknown_workload_names_the_profile_setting(
    kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    with pytest.raises(EnvironmentUnavailable, match=r"\[services\]"):
        platform.replicas("airflow-scheduler")


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="KUBECONFIG points to no cluster")
def test_real_cluster_read_only(tmp_path: Path) -> None:
    """Against a real cluster: only reads and access reviews, never a write."""
    platform = KubernetesPlatform.connect(
        os.environ.get("DRTESTS_K8S_NAMESPACE", NS),
        WORKLOADS,
        _rails(tmp_path, dry_run=True).authorize,
        kubeconfig=Path(os.environ["KUBECONFIG"]),
    )
    result = platform.access_review()
    assert result.error is None
    platform.pods("app")


class _ControllerManager:
    """What the emulator lacks: workload status follows spec (all replicas become ready)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            for items, patch in (
                (
                    self.apps.list_namespaced_deployment(NS).items,
                    self.apps.patch_namespaced_deployment_status,
                ),
                (
                    self.apps.list_namespaced_stateful_set(NS).items,
                    self.apps.patch_namespaced_stateful_set_status,
                ),
            ):
                for obj in items:
                    want = obj.spec.replicas or 0
                    if (obj.status.ready_replicas or 0) != want or (
                        obj.status.replicas or 0
                    ) != want:
                        status = {"replicas": want, "readyReplicas": want}
                        patch(obj.metadata.name, NS, {"status": status})
            # the Spark operator: every submitted application completes
            spark = ("sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications")
            for app in self.custom.list_namespaced_custom_object(*spark)["items"]:
                if not app.get("status"):
                    done = {"status": {"applicationState": {"state": "COMPLETED"}}}
                    self.custom.patch_namespaced_custom_object_status(
                        *spark, app["metadata"]["name"], done
                    )

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def test_full_restore_procedure_runs_on_kubernetes(
    kube_emulator: KubeEmulator,
    cluster: client.ApiClient,
    metastore: Any,
    backup_catalog: Any,
    tmp_path: Path,
) -> None:
    """Option 1 as the game day runs it live: the same procedure, with the workloads on
    Kubernetes (scaled down and back to their remembered counts, readiness by watch) and the
    metastore database and backups on this worker's real servers."""
    from datetime import UTC, datetime

    from drtests.procedures import Journal, MetastoreRestoreTarget, hms_full_restore

    controllers = _ControllerManager(cluster)
    try:
        platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
        platform.test_job = {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {"name": "hms-smoke"},
            "spec": {"type": "Python", "mode": "cluster"},
        }
        target = MetastoreRestoreTarget(
            pg=metastore.target.endpoint,
            database=metastore.target.database,
            platform=platform,
            metastore_service="spark-hive-metastore",
            dependents=("spark-history-server", "jupyter-connect"),
            workdir=tmp_path,
            ready_timeout=20,
        )
        baseline = metastore.baseline()
        backup_catalog.create(metastore.target.endpoint, metastore.target.database)
        metastore.commit_changes(2)  # lost by the restore
        journal = Journal()
        outcome = hms_full_restore(target, backup_catalog, datetime.now(UTC), journal)
    finally:
        controllers.close()
    assert outcome.remembered_replicas == {
        "spark-history-server": 2,
        "jupyter-connect": 1,
        "spark-hive-metastore": 1,
    }
    assert platform.replicas("spark-history-server") == 2
    assert all(r.ok for r in metastore.verify(baseline))
    scaled = [p for m, p in kube_emulator.mutating_requests() if m == "PATCH" and "status" not in p]
    assert scaled.count(f"/apis/apps/v1/namespaces/{NS}/statefulsets/spark-hive-metastore") == 2
    assert {s.status for s in journal.steps} == {"passed"}
    assert journal.steps[-1].name == "Run test job" and "COMPLETED" in journal.steps[-1].detail


def test_doctor_reviews_kubernetes_permissions(
    kube_emulator: KubeEmulator, live_profile: tuple[Path, str], tmp_path: Path
) -> None:
    """drtests doctor asks the API server for every verb the procedures need and says
    NO-GO naming the one it may not use."""
    import subprocess
    import sys

    _deny_pod_deletes(kube_emulator)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters: [{{name: emu, cluster: {{server: '{kube_emulator.url}'}}}}]\n"
        "users: [{name: sre, user: {token: not-a-secret}}]\n"
        "contexts: [{name: test, context: {cluster: emu, user: sre}}]\n"
    )
    profile = tmp_path / "doctor.toml"
    profile.write_text(live_profile[0].read_text() + f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "drtests.cli", "doctor", "--profile", str(profile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED  kubernetes_permissions" in result.stdout
    assert "error: delete pods: denied" in result.stdout
    assert "hive-metastore-backup: job does not exist" in result.stdout
    assert "NO-GO" in result.stdout


def test_logs_and_events_are_collected_as_evidence(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    client.CoreV1Api(cluster).create_namespaced_event(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "spark-hive-metastore-0.1", "namespace": NS},
            "involvedObject": {"kind": "Pod", "name": "spark-hive-metastore-0"},
            "type": "Normal",
            "reason": "Started",
            "message": "Started container metastore",
        },
    )
    kube_emulator.handler[f"get /api/v1/namespaces/{NS}/pods/spark-hive-metastore-0/log"] << (
        b"Starting Hive Metastore Server\nHMS ready on 9083\n"
    )
    lines = _platform(kube_emulator.url, _rails(tmp_path).authorize).evidence(
        "spark-hive-metastore"
    )
    assert "event spark-hive-metastore-0: Normal Started: Started container metastore" in lines
    assert any(line.startswith("log spark-hive-metastore-0: ") and "9083" in line for line in lines)
