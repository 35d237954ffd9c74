"""Pod kill on a real Kubernetes API (K3s in a container, containers mode): the metastore's
PostgreSQL runs as a Deployment; its pod is deleted with its grace period and the
ReplicaSet's replacement must become Ready, measured as Krkn reports it.

Control: the same kill with the Deployment scaled to 0 — nothing replaces the pod, and the
readiness check must fail.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from drtests.errors import DRError
from drtests.fixtures.k3s import K3sCluster
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.platform.kubernetes import KubernetesPlatform
from drtests.plugin import DRSession
from drtests.results import CheckResult, Finding, RpoMeasurement

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.platform]
PROCEDURE = "pod_recovery"
RUNBOOK = "000 Restore Procedure · Post-Restore Validation (services restarted)"
NAMESPACE = "spark-operations"
WORKLOAD = "postgresql-hive"


def _deployment(image: str) -> dict[str, Any]:
    labels = {"app": WORKLOAD}
    probe = {"exec": {"command": ["pg_isready", "-U", "postgres"]}, "periodSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WORKLOAD, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "postgres",
                            "image": image,
                            "env": [{"name": "POSTGRES_PASSWORD", "value": secrets.token_hex(8)}],
                            "readinessProbe": probe,
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
def k3s_platform(
    dr: DRSession, k3s_cluster: K3sCluster, scenario: ScenarioRecorder
) -> Iterator[KubernetesPlatform]:
    """The PostgreSQL Deployment on the cluster, ready, as the pod kill finds it."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(k3s_cluster.kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    if not any(n.metadata.name == NAMESPACE for n in core.list_namespace().items):
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    apps.create_namespaced_deployment(NAMESPACE, _deployment(dr.profile.containers.postgres_image))
    platform = KubernetesPlatform.connect(
        NAMESPACE,
        {WORKLOAD: "deployment"},
        scenario.authorize,
        kubeconfig=k3s_cluster.kubeconfig,
        context=k3s_cluster.context,
    )
    platform.wait_ready(WORKLOAD, dr.profile.containers.ready_timeout_s + 120)
    yield platform
    apps.delete_namespaced_deployment(WORKLOAD, NAMESPACE)


@pytest.mark.parametrize("controlled", [True, False], ids=["replicaset", "scaled-to-zero"])
def test_k3s_pod_killed_is_replaced(
    controlled: bool,
    dr: DRSession,
    scenario: ScenarioRecorder,
    k3s_platform: KubernetesPlatform,
) -> None:
    scenario.begin(
        PROCEDURE,
        "platform",
        "Metastore PostgreSQL pod killed on Kubernetes (K3s)",
        RUNBOOK + ("" if controlled else " (no controller)"),
        kind="scenario" if controlled else "negative-control",
    )
    # without a controller nothing comes; waiting the whole readiness bound proves no more
    timeout = dr.profile.containers.ready_timeout_s if controlled else 30
    if not controlled:
        k3s_platform.scale(WORKLOAD, 0)
    scenario.incident()
    ready = CheckResult("replacement_ready", f"{WORKLOAD} has a Ready replacement pod")
    with scenario.journal.step("Kill pod", "delete with the pod's grace period") as step:
        try:
            step.detail = k3s_platform.kill_and_measure(WORKLOAD, timeout).describe()
        except DRError as exc:
            ready.findings.append(Finding(ready.name, "error", WORKLOAD, str(exc)))
            step.detail = str(exc)
    if controlled:
        scenario.restored(None)
    with scenario.journal.step("Collect logs and events", "evidence") as step:
        step.detail = "; ".join(k3s_platform.evidence(WORKLOAD))[:2000]
    verified = scenario.verified([ready])
    if not controlled:
        assert not verified
        return
    assert verified, ready.findings
    scenario.measured_rpo(RpoMeasurement(0, None, 0.0))
    scenario.assert_objectives_met()
