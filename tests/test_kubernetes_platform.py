"""The Kubernetes platform against a Kubernetes API over real HTTP: kmock's emulator with
the API server's rules a DR procedure meets on a real cluster (``fixtures.kubernetes``) and
the controllers and kubelet played beside it (``fixtures.kube_controllers``): pods that stay
Terminating for their grace period, StatefulSet ordinals replaced in order under the same
names, ``observedGeneration`` lagging ``generation``, ``readyReplicas`` counting a Terminating
pod, watches cut mid-stream, 403 from a Role, 400 for a multi-container log, 404 for what
vanished, 422 for an invalid SparkApplication. Against a real cluster too when KUBECONFIG
points to one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drtests.config import Profile, Safety
from drtests.errors import EnvironmentUnavailable, SafetyError
from drtests.platform.kubernetes import REQUIRED_ACCESS, KubernetesPlatform, rbac_role
from drtests.platform.selectors import selector_matches
from drtests.safety import DryRunStop, SafetyRails
from fixtures.kubernetes import KubeEmulator

pytest.importorskip("kubernetes")
from kubernetes import client

from fixtures.kube_controllers import runbook_workloads, settled

NS = "spark-operations"
WORKLOADS = {
    "spark-hive-metastore": "statefulset",
    "spark-history-server": "deployment",
    "jupyter-connect": "deployment",
}
TEST_JOB = {
    "apiVersion": "sparkoperator.k8s.io/v1beta2",
    "kind": "SparkApplication",
    "metadata": {"name": "hms-smoke"},
    "spec": {
        "type": "Python",
        "mode": "cluster",
        "sparkVersion": "3.5.3",
        "driver": {"cores": 1},
        "executor": {"instances": 1},
    },
}


def _api(url: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)


def _rails(tmp_path: Path, *, allow: tuple[str, ...] = ("k8s://test/*",), **kw: Any) -> Any:
    profile = Profile(name="staging", environment="live", safety=Safety(allow_list=allow))
    return SafetyRails(profile, allow_destructive=True, plan_file=tmp_path / "plan.txt", **kw)


def _pods(api: client.ApiClient, selector: str = "") -> list[Any]:
    """The pods of ``selector`` (the emulator ignores selectors: filtered here)."""
    found = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=selector).items
    return [p for p in found if selector_matches(p.metadata.labels, selector)]


@pytest.fixture
def cluster(kube_emulator: KubeEmulator) -> Iterator[client.ApiClient]:
    """The runbooks' namespace: the metastore StatefulSet and its dependants, running
    under the controllers (4 pods, grace period 1 s)."""
    api = _api(kube_emulator.url)
    controllers = runbook_workloads(api, NS)
    yield api
    controllers.close()
    assert not controllers.errors, controllers.errors


def _platform(url: str, authorize: Callable[[str, str], None]) -> KubernetesPlatform:
    return KubernetesPlatform(_api(url), NS, WORKLOADS, authorize, context="test")


def _later(delay: float, action: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------ selectors


def test_label_selectors_are_checked_on_the_client() -> None:
    assert selector_matches({"environment": "production", "app": "x"}, "environment=production")
    assert not selector_matches({"environment": "staging"}, "environment=production")
    assert selector_matches({"app": "x"}, "app=x,environment!=production")
    assert not selector_matches({}, "app")
    assert selector_matches({"app": "hms", "tier": "db"}, "tier in (cache,db),!canary")
    assert not selector_matches({"app": "hms", "canary": "1"}, "app,!canary")
    assert not selector_matches({"tier": "web"}, "tier in (cache,db)")
    assert selector_matches({}, "tier notin (db)")
    assert not selector_matches({"tier": "db"}, "tier notin (cache, db)")


def test_a_selector_of_match_expressions_kills_only_its_pods(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    """matchExpressions alone must not turn into "" (every pod of the namespace)."""
    apps = client.AppsV1Api(cluster)
    apps.patch_namespaced_stateful_set(
        "spark-hive-metastore",
        NS,
        {
            "spec": {
                "selector": {
                    "matchLabels": None,
                    "matchExpressions": [
                        {"key": "app", "operator": "In", "values": ["hive-metastore"]}
                    ],
                }
            }
        },
    )
    others = {
        p.metadata.uid for p in _pods(cluster) if p.metadata.labels["app"] != "hive-metastore"
    }
    _platform(kube_emulator.url, _rails(tmp_path).authorize).kill("spark-hive-metastore")
    assert others <= {p.metadata.uid for p in _pods(cluster)}
    deleted = [p for m, p in kube_emulator.mutating_requests() if m == "DELETE"]
    assert deleted == [f"/api/v1/namespaces/{NS}/pods/spark-hive-metastore-0"]
    lists = [r for r in kube_emulator.handler if r.url.path.endswith("/pods") and r.url.query]
    assert any(r.url.query.get("labelSelector") == "app in (hive-metastore)" for r in lists)


@pytest.mark.parametrize(
    "selector",
    [{}, {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}],
    ids=["empty", "exclusions-only"],
)
def test_a_selector_that_selects_everything_is_refused_before_any_delete(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path, selector: Any
) -> None:
    client.AppsV1Api(cluster).patch_namespaced_deployment(
        "jupyter-connect",
        NS,
        {"spec": {"selector": {"matchLabels": None, "matchExpressions": None, **selector}}},
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    before = kube_emulator.mutating_requests()
    with pytest.raises(SafetyError, match="would select every pod of the namespace"):
        platform.kill("jupyter-connect")
    with pytest.raises(SafetyError, match="would select every pod"):
        platform.delete_spark_applications("")
    assert [r for r in kube_emulator.mutating_requests()[len(before) :] if r[0] == "DELETE"] == []
    assert len(_pods(cluster)) == 4


# ------------------------------------------------------------------ scale and readiness


def test_scale_to_zero_returns_when_the_pods_are_gone(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    """Pods terminate over their grace period (1 s here): "stopped" is no pod left, so no
    connection pool can reconnect between the session kill and the swap."""
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    remembered = platform.replicas("spark-history-server")
    started = time.monotonic()
    platform.scale("spark-history-server", 0)
    assert time.monotonic() - started >= 1.0
    assert _pods(cluster, "app=history") == []
    platform.scale("spark-history-server", remembered)
    platform.wait_ready("spark-history-server", timeout=15)
    assert platform.replicas("spark-history-server") == 2
    assert len(_pods(cluster, "app=history")) == 2
    platform.scale("spark-hive-metastore", 0)
    assert _pods(cluster, "app=hive-metastore") == []
    assert ("PATCH", f"/apis/apps/v1/namespaces/{NS}/statefulsets/spark-hive-metastore/scale") in (
        kube_emulator.mutating_requests()
    )


def test_ready_is_not_read_from_a_stale_status(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    """1 → 0 → 1 inside the grace period: the StatefulSet's status still says 1 ready (the
    dying ordinal 0, and a generation not yet observed); ready means a new ordinal 0 is."""
    apps = client.AppsV1Api(cluster)
    old = {p.metadata.uid for p in _pods(cluster, "app=hive-metastore")}
    apps.patch_namespaced_stateful_set("spark-hive-metastore", NS, {"spec": {"replicas": 0}})
    time.sleep(0.5)  # observed; ordinal 0 is Terminating and still counted as ready
    apps.patch_namespaced_stateful_set("spark-hive-metastore", NS, {"spec": {"replicas": 1}})
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    waited = platform.wait_ready("spark-hive-metastore", timeout=15)
    assert waited > 0.5
    pods = _pods(cluster, "app=hive-metastore")
    assert [p.metadata.name for p in pods] == ["spark-hive-metastore-0"]
    assert pods[0].metadata.uid not in old and pods[0].metadata.deletion_timestamp is None
    watches = [r for r in kube_emulator.handler if r.url.query.get("watch") in ("true", "True")]
    assert watches, "readiness must be awaited with a watch, not a sleep loop"


def test_wait_ready_times_out_with_a_clear_error(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    kube_emulator.rules.denied.add(("create", "pods"))  # the controller cannot make pods
    client.AppsV1Api(cluster).patch_namespaced_deployment(
        "jupyter-connect", NS, {"spec": {"replicas": 2}}
    )
    with pytest.raises(EnvironmentUnavailable, match="deployment/jupyter-connect not ready"):
        platform.wait_ready("jupyter-connect", timeout=1.5)
    kube_emulator.rules.denied.clear()


def test_a_dropped_watch_is_watched_again_until_the_deadline(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    kube_emulator.rules.drop_watches_after_s = 0.3
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    platform.scale("spark-history-server", 3)
    waited = platform.wait_ready("spark-history-server", timeout=15)
    assert waited > 0.3 and kube_emulator.rules.dropped >= 1
    assert len(_pods(cluster, "app=history")) == 3
    kube_emulator.rules.drop_watches_after_s = None


# ------------------------------------------------------------------ pod kills


def test_pod_kill_waits_for_every_replacement_as_krkn_does(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    """Deleted with their own grace period (a force delete of a StatefulSet pod is unsafe),
    recovered when as many pods are Ready as before, each replacement reported."""
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    recovery = platform.kill_and_measure("spark-history-server", timeout=20)
    assert len(recovery.pods) == 2
    assert all(0 < p.rescheduled_s < p.ready_s for p in recovery.pods)
    assert recovery.ready_s == max(p.ready_s for p in recovery.pods)
    stateful = platform.kill_and_measure("spark-hive-metastore", timeout=20)
    # the same name comes back only once the old pod is gone: after its grace period
    assert stateful.pods[0].pod == "spark-hive-metastore-0"
    assert 1.0 <= stateful.rescheduled_s < stateful.ready_s
    deletes = [r for r in kube_emulator.handler if str(r.method.value) == "DELETE"]
    assert deletes and all("gracePeriodSeconds" not in r.url.query for r in deletes)


def test_a_pod_gone_between_list_and_delete_counts_as_killed(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    kube_emulator.rules.vanish.add("spark-hive-metastore-0")
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    platform.kill("spark-hive-metastore")
    platform.wait_ready("spark-hive-metastore", timeout=15)


# ------------------------------------------------------------------ Spark


def _spark_app(name: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        **TEST_JOB,
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {**TEST_JOB["spec"], **spec},  # type: ignore[dict-item]
    }


def test_spark_applications_stopped_by_label_with_their_pods(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(cluster)
    spark = ("sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications")
    for name, env in (("etl-daily", "production"), ("etl-test", "staging")):
        custom.create_namespaced_custom_object(*spark, _spark_app(name, {"environment": env}))
    deadline = time.monotonic() + 10
    while len(_pods(cluster, "sparkoperator.k8s.io/app-name")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kube_emulator.rules.vanish.add("etl-test")  # gone by itself before the delete
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    assert platform.delete_spark_applications("environment in (production,staging)") == 2
    assert custom.list_namespaced_custom_object(*spark)["items"] == []
    assert _pods(cluster, "sparkoperator.k8s.io/app-name") == []  # drivers gone, not dying


def test_test_spark_job_is_awaited_its_driver_log_kept_and_it_is_removed(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    kube_emulator.rules.logs["smoke-driver-pod/spark-kubernetes-driver"] = (
        "SHOW DATABASES: 3 databases\nJob finished\n"
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    manifest = _spark_app("hms-smoke", {}, driver={"podName": "smoke-driver-pod"})
    result = platform.submit_test_job(manifest, timeout=10)
    assert result.state == "COMPLETED" and result.seconds >= 0.3
    assert "Job finished" in result.log
    spark = ("sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications")
    assert client.CustomObjectsApi(cluster).list_namespaced_custom_object(*spark)["items"] == []


def test_an_invalid_test_job_is_refused_before_anything_changes(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    invalid = {**TEST_JOB, "spec": {"type": "Python", "mode": "cluster"}}
    before = [r for r in kube_emulator.mutating_requests() if "sparkapplications" in r[1]]
    with pytest.raises(EnvironmentUnavailable, match=r"spec\.driver, spec\.executor, spec\.spark"):
        KubernetesPlatform(
            _api(kube_emulator.url),
            NS,
            WORKLOADS,
            _rails(tmp_path).authorize,
            "test",
            test_job=invalid,
        )
    after = [r for r in kube_emulator.mutating_requests() if "sparkapplications" in r[1]]
    assert after == before
    # and the emulator refuses it as the CRD does, had it been sent
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(cluster).create_namespaced_custom_object(
            "sparkoperator.k8s.io", "v1beta2", NS, "sparkapplications", invalid
        )
    assert refused.value.status == 422


# ------------------------------------------------------------------ CronJobs


def _cronjob(api: client.ApiClient, status: dict[str, Any], suspend: bool = False) -> None:
    client.BatchV1Api(api).create_namespaced_cron_job(
        NS,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "hive-metastore-backup", "namespace": NS},
            "spec": {
                "schedule": "0 2 * * *",
                "suspend": suspend,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
            },
            "status": status,
        },
    )


def test_cronjob_last_run_and_absence(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    _cronjob(
        cluster,
        {"lastScheduleTime": "2026-11-22T02:00:00Z", "lastSuccessfulTime": "2026-11-22T02:03:10Z"},
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    run = platform.last_job_run("hive-metastore-backup")
    assert run is not None and run.succeeded and run.started_at.hour == 2
    assert platform.job_exists("hive-metastore-backup")
    assert not platform.job_exists("hive-metastore-consistency-check")


def test_a_cronjob_run_in_progress_is_not_a_failure(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    _cronjob(
        cluster,
        {
            "lastScheduleTime": "2026-11-23T02:00:00Z",
            "lastSuccessfulTime": "2026-11-22T02:03:10Z",
            "active": [{"kind": "Job", "name": "hive-metastore-backup-29391", "namespace": NS}],
        },
    )
    run = _platform(kube_emulator.url, _rails(tmp_path).authorize).last_job_run(
        "hive-metastore-backup"
    )
    assert run is not None and run.succeeded and run.started_at.day == 22
    assert "in progress" in run.detail


def test_a_suspended_backup_cronjob_does_not_pass(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    _cronjob(
        cluster,
        {"lastScheduleTime": "2026-11-22T02:00:00Z", "lastSuccessfulTime": "2026-11-22T02:03:10Z"},
        suspend=True,
    )
    run = _platform(kube_emulator.url, _rails(tmp_path).authorize).last_job_run(
        "hive-metastore-backup"
    )
    assert run is not None and not run.succeeded and "suspended" in run.detail


# ------------------------------------------------------------------ access


def test_access_table_covers_every_watch_and_the_role_matches_it() -> None:
    assert ("watch", "apps", "statefulsets", "") in REQUIRED_ACCESS
    assert ("watch", "sparkoperator.k8s.io", "sparkapplications", "") in REQUIRED_ACCESS
    role = rbac_role("drtests", NS)
    granted = {
        (verb, group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    wanted = {(v, g, f"{r}/{sub}" if sub else r) for v, g, r, sub in REQUIRED_ACCESS}
    assert granted == wanted


def test_access_review_names_each_denied_verb(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    kube_emulator.rules.denied |= {("delete", "pods"), ("watch", "statefulsets")}
    result = _platform(kube_emulator.url, _rails(tmp_path).authorize).access_review()
    assert {f.subject for f in result.findings} == {"delete pods", "watch statefulsets"}
    # the review and the call agree
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    with pytest.raises(EnvironmentUnavailable, match="403"):
        platform.kill("jupyter-connect")


def test_dry_run_sends_no_mutating_call(
    kube_emulator: KubeEmulator, cluster: client.ApiClient, tmp_path: Path
) -> None:
    rails = _rails(tmp_path, dry_run=True)
    platform = _platform(kube_emulator.url, rails.authorize)
    before = kube_emulator.mutating_requests()
    for action in (
        lambda: platform.scale("spark-hive-metastore", 0),
        lambda: platform.kill("spark-hive-metastore"),
        lambda: platform.submit_test_job(TEST_JOB, 5),
    ):
        with pytest.raises(DryRunStop):
            action()
    assert kube_emulator.mutating_requests() == before  # no POST, PUT, PATCH or DELETE
    plan = (tmp_path / "plan.txt").read_text()
    assert "scale statefulset/spark-hive-metastore to 0 on k8s://test/" in plan
    assert "kill pod on k8s://test/spark-operations/pod/spark-hive-metastore-0" in plan


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

    client.CustomObjectsApi(cluster).create_namespaced_custom_object(
        "sparkoperator.k8s.io",
        "v1beta2",
        NS,
        "sparkapplications",
        _spark_app("nightly-etl", {"environment": "staging"}),
    )
    platform = _platform(kube_emulator.url, _rails(tmp_path).authorize)
    platform.test_job = TEST_JOB
    target = MetastoreRestoreTarget(
        pg=metastore.target.endpoint,
        database=metastore.target.database,
        platform=platform,
        metastore_service="spark-hive-metastore",
        dependents=("spark-history-server", "jupyter-connect"),
        workdir=tmp_path,
        ready_timeout=20,
        spark_application_selector="environment=staging",  # the profile's, not a constant
    )
    baseline = metastore.baseline()
    backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    metastore.commit_changes(2)  # lost by the restore
    journal = Journal()
    outcome = hms_full_restore(target, backup_catalog, datetime.now(UTC), journal)
    assert outcome.remembered_replicas == {
        "spark-history-server": 2,
        "jupyter-connect": 1,
        "spark-hive-metastore": 1,
    }
    assert platform.replicas("spark-history-server") == 2
    assert all(r.ok for r in metastore.verify(baseline))
    scaled = [p for m, p in kube_emulator.mutating_requests() if m == "PATCH" and "status" not in p]
    assert (
        scaled.count(f"/apis/apps/v1/namespaces/{NS}/statefulsets/spark-hive-metastore/scale") == 2
    )
    assert {s.status for s in journal.steps} == {"passed"}
    assert "1 SparkApplications deleted" in journal.steps[1].detail
    assert _pods(cluster, "sparkoperator.k8s.io/app-name=nightly-etl") == []
    assert journal.steps[-1].name == "Run test job" and "COMPLETED" in journal.steps[-1].detail


def test_doctor_reviews_kubernetes_permissions(
    kube_emulator: KubeEmulator, live_profile: tuple[Path, str], tmp_path: Path
) -> None:
    """drtests doctor asks the API server for every verb the procedures need (watches
    included) and says NO-GO naming the ones it may not use; it connects wherever the game
    day would, here through ~/.kube/config with no KUBECONFIG and nothing in the profile."""
    import subprocess
    import sys

    kube_emulator.rules.denied |= {("delete", "pods"), ("watch", "statefulsets")}
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    kube_emulator.kubeconfig(home / ".kube" / "config")
    profile = tmp_path / "doctor.toml"
    profile.write_text(live_profile[0].read_text())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))},
        "HOME": str(home),
    }
    env.pop("KUBECONFIG", None)
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
    assert "error: watch statefulsets: denied" in result.stdout
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
    kube_emulator.rules.logs["spark-hive-metastore-0/main"] = (
        "Starting Hive Metastore Server\nHMS ready on 9083\n"
    )
    kube_emulator.rules.logs["spark-hive-metastore-0/log-shipper"] = "shipped 12 lines\n"
    client.AppsV1Api(cluster).patch_namespaced_stateful_set(
        "spark-hive-metastore",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "main", "image": "example"},
                            {"name": "log-shipper", "image": "example"},
                        ]
                    }
                }
            }
        },
    )
    client.CoreV1Api(cluster).delete_namespaced_pod("spark-hive-metastore-0", NS)
    settled(cluster, NS, 4)  # the replacement has the sidecar
    lines = _platform(kube_emulator.url, _rails(tmp_path).authorize).evidence(
        "spark-hive-metastore"
    )
    assert "event spark-hive-metastore-0: Normal Started: Started container metastore" in lines
    assert any(
        line.startswith("log spark-hive-metastore-0/main: ") and "9083" in line for line in lines
    )
    assert "log spark-hive-metastore-0/log-shipper: shipped 12 lines" in lines


def test_the_readme_role_is_the_access_table() -> None:
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```yaml\napiVersion: rbac.authorization.k8s.io/v1\n", 1)[1]
    documented = yaml.safe_load(
        "apiVersion: rbac.authorization.k8s.io/v1\n" + block.split("```")[0]
    )
    assert documented == rbac_role("drtests", NS)


# ------------------------------------------------------------------ exec


def _one_deployment(
    kube_emulator: KubeEmulator, name: str, component: str, container: Any
) -> Iterator[client.ApiClient]:
    """A Deployment of one pod whose container is ``container`` (``fixtures.kube_pods``)."""
    from fixtures.kube_controllers import ClusterControllers, workload
    from fixtures.kube_pods import ProcessPods

    api = _api(kube_emulator.url)
    pods = ProcessPods()
    pods.add(name, container)
    kube_emulator.rules.pods = pods
    client.AppsV1Api(api).create_namespaced_deployment(
        NS, workload("deployment", NS, name, 1, component)
    )
    controllers = ClusterControllers(api, NS, runtime=pods)
    try:
        settled(api, NS, 1)
        yield api
    finally:
        controllers.close()
        pods.stop_all()


@pytest.fixture
def exec_cluster(kube_emulator: KubeEmulator, tmp_path: Path) -> Iterator[client.ApiClient]:
    """A scheduler Deployment whose pods run commands in this machine's environment."""
    from fixtures.kube_pods import Container

    container = Container(dict(os.environ), tmp_path)
    yield from _one_deployment(kube_emulator, "airflow-scheduler", "scheduler", container)


def _scheduler(url: str, authorize: Callable[[str, str], None]) -> KubernetesPlatform:
    return KubernetesPlatform(
        _api(url), NS, {"airflow-scheduler": "deployment"}, authorize, context="test"
    )


ECHO = "import sys; data = sys.stdin.buffer.read(); print(len(data)); sys.exit(3)"


def test_exec_sends_stdin_and_returns_output_and_exit_code(
    exec_cluster: client.ApiClient, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    platform = _scheduler(kube_emulator.url, _rails(tmp_path).authorize)
    before = len(kube_emulator.mutating_requests())
    payload = bytes(range(256)) * 1000  # several websocket frames, every byte value
    result = platform.exec_in(
        "airflow-scheduler", ["python", "-c", ECHO], action="echo in", stdin=payload, timeout=60
    )
    assert result.returncode == 3
    assert result.stdout.decode().strip() == str(len(payload))
    assert result.pod.startswith("airflow-scheduler-") and result.container == "main"
    assert [m for m, _ in kube_emulator.mutating_requests()[before:]] == ["EXEC"]


def test_exec_denied_is_named_and_a_dry_run_sends_no_exec(
    exec_cluster: client.ApiClient, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    kube_emulator.rules.denied.add(("create", "pods/exec"))
    platform = _scheduler(kube_emulator.url, _rails(tmp_path).authorize)
    with pytest.raises(EnvironmentUnavailable, match="403 Forbidden: this identity may not create"):
        platform.exec_in("airflow-scheduler", ["python", "-c", "pass"], action="run", timeout=30)
    with pytest.raises(EnvironmentUnavailable, match=r"may not create pods/exec in .*nothing"):
        platform.require_access((("create", "", "pods", "exec"),), "Airflow's restore")
    kube_emulator.rules.denied.clear()
    before = len(kube_emulator.mutating_requests())
    rails = _rails(tmp_path, dry_run=True)
    dry = _scheduler(kube_emulator.url, rails.authorize)
    with pytest.raises(DryRunStop):
        dry.exec_in("airflow-scheduler", ["python", "-c", "pass"], action="run DagBag() in")
    assert kube_emulator.mutating_requests()[before:] == []
    assert any(
        "run DagBag() in" in line and "/pod/airflow-scheduler-" in line for line in rails.plan
    )


def test_exec_without_a_ready_pod_says_so(
    exec_cluster: client.ApiClient, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    platform = _scheduler(kube_emulator.url, _rails(tmp_path).authorize)
    platform.scale("airflow-scheduler", 0)
    with pytest.raises(EnvironmentUnavailable, match="has no Ready pod to run python in"):
        platform.exec_in("airflow-scheduler", ["python", "-c", "pass"], action="run", timeout=30)


# ------------------------------------------------------------------ port-forward

#: the API server's pod: answers every GET with its pod's name
POD_SERVER = """
import http.server, sys
name, port = sys.argv[1], int(sys.argv[2])
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer).serve_forever()
"""


@pytest.fixture
def web_cluster(kube_emulator: KubeEmulator, tmp_path: Path) -> Iterator[client.ApiClient]:
    """An API server Deployment whose pod serves its container port 8080 from a local
    process (a new process for each new pod)."""
    import sys

    from drtests.processes import ManagedProcess, free_port, http_ok
    from fixtures.kube_pods import Container

    port = free_port()

    def serve(pod: str) -> ManagedProcess:
        argv = [sys.executable, "-c", POD_SERVER, pod, str(port)]
        return ManagedProcess(pod, argv, tmp_path / f"{pod}.log")

    def answers() -> bool:
        return http_ok(f"http://127.0.0.1:{port}/")

    container = Container(dict(os.environ), tmp_path, serve, answers, {8080: port})
    yield from _one_deployment(kube_emulator, "airflow-web", "web", container)


def _web(url: str, tmp_path: Path) -> KubernetesPlatform:
    return KubernetesPlatform(
        _api(url), NS, {"airflow-web": "deployment"}, _rails(tmp_path).authorize, context="test"
    )


def _get(url: str) -> str:
    """One GET over its own connection (as the suite's API clients send them)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def test_port_forward_reaches_the_pod_and_the_next_pod_after_a_restart(
    web_cluster: client.ApiClient, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    """The same local address before and after the workload is scaled to 0 and back (a
    restore's restart): the pod is chosen per connection, not once as kubectl does."""
    import http.client

    platform = _web(kube_emulator.url, tmp_path)
    before = len(kube_emulator.requests())
    with platform.forward("airflow-web", 8080) as forward:
        opened = [m for m, _ in kube_emulator.requests()[before:]]
        assert opened == ["GET"], "forwarded before anyone connected"  # the selector read
        first = _get(forward.url)
        assert first.startswith("airflow-web-")
        mutating = len(kube_emulator.mutating_requests())
        platform.scale("airflow-web", 0)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            _get(forward.url)
        assert forward.last_error is not None
        assert "deployment/airflow-web has no Ready pod to forward port 8080" in forward.last_error
        platform.scale("airflow-web", 1)
        platform.wait_ready("airflow-web", 120)
        second = _get(forward.url)
        assert second.startswith("airflow-web-") and second != first
        assert forward.connections == 2
    forwarded = [p for m, p in kube_emulator.requests()[before:] if m == "PORTFORWARD"]
    assert forwarded == [
        f"/api/v1/namespaces/{NS}/pods/{first}/portforward",
        f"/api/v1/namespaces/{NS}/pods/{second}/portforward",
    ]
    scales = [m for m, _ in kube_emulator.mutating_requests()[mutating:]]
    assert scales == ["PATCH", "PATCH"], "the forward itself changed something"


def test_port_forward_names_a_denied_verb_and_a_port_the_pod_does_not_serve(
    web_cluster: client.ApiClient, kube_emulator: KubeEmulator, tmp_path: Path
) -> None:
    import http.client

    platform = _web(kube_emulator.url, tmp_path)
    kube_emulator.rules.denied.add(("create", "pods/portforward"))
    try:
        with platform.forward("airflow-web", 8080) as forward:
            with pytest.raises((http.client.HTTPException, ConnectionError)):
                _get(forward.url)
            assert forward.last_error is not None
            assert "403 Forbidden: this identity may not create pods/portforward" in (
                forward.last_error
            )
        with pytest.raises(EnvironmentUnavailable, match="may not create pods/portforward"):
            platform.require_access((("create", "", "pods", "portforward"),), "the API checks")
    finally:
        kube_emulator.rules.denied.clear()
    with platform.forward("airflow-web", 9090) as forward:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            _get(forward.url)
        assert forward.last_error is not None
        assert "error forwarding port 9090" in forward.last_error
