"""The runbooks' kubectl steps through the official ``kubernetes`` client: scale workloads
(remembering their replica counts), wait for readiness with watches, delete
SparkApplications by label, kill pods with grace period 0 and measure their recovery as
Krkn reports it, collect logs and events, run the test SparkApplication, read CronJobs, and
ask the API server what this identity may do (SelfSubjectAccessReview).

Every mutating call first passes the safety rails (``authorize``): a target off the
allow-list or a dry run sends nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError, ReadTimeoutError

from drtests.errors import EnvironmentUnavailable
from drtests.platform import JobRun, PodRecovery, TestJobResult
from drtests.platform.selectors import require_narrow, selector_matches, selector_string
from drtests.results import CheckResult, Finding

SPARK_GROUP, SPARK_VERSION, SPARK_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
Authorize = Callable[[str, str], None]

# what the procedures do, as (verb, group, resource[, subresource]) for access reviews
REQUIRED_ACCESS: tuple[tuple[str, str, str, str], ...] = (
    ("get", "apps", "deployments", ""),
    ("patch", "apps", "deployments", ""),
    ("get", "apps", "statefulsets", ""),
    ("patch", "apps", "statefulsets", ""),
    ("watch", "apps", "deployments", ""),
    ("list", "", "pods", ""),
    ("watch", "", "pods", ""),
    ("delete", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("list", "", "events", ""),
    ("list", SPARK_GROUP, SPARK_PLURAL, ""),
    ("create", SPARK_GROUP, SPARK_PLURAL, ""),
    ("delete", SPARK_GROUP, SPARK_PLURAL, ""),
    ("get", "batch", "cronjobs", ""),
)


def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


class KubernetesPlatform:
    """One namespace's workloads; ``workloads`` maps each name to ``deployment`` or
    ``statefulset`` (the runbooks' metastore is a StatefulSet, the rest Deployments)."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        workloads: dict[str, str],
        authorize: Authorize,
        context: str = "in-cluster",
        request_timeout: float = 30.0,
        test_job: dict[str, Any] | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.workloads = workloads
        self.authorize = authorize
        self.context = context
        self.timeout = request_timeout
        self.test_job = test_job
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.access = client.AuthorizationV1Api(api)

    @classmethod
    def connect(
        cls,
        namespace: str,
        workloads: dict[str, str],
        authorize: Authorize,
        kubeconfig: Path | None = None,
        context: str | None = None,
        test_job: dict[str, Any] | None = None,
    ) -> KubernetesPlatform:
        """kubeconfig (file, optional context) or, inside a pod, the in-cluster config."""
        configuration = client.Configuration()
        try:
            if kubeconfig is None and context is None and _in_cluster():
                config.load_incluster_config(client_configuration=configuration)
                name = "in-cluster"
            else:
                config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                )
                name = context or _current_context(kubeconfig)
        except (config.ConfigException, OSError) as exc:
            raise EnvironmentUnavailable(f"Kubernetes configuration: {exc}") from None
        return cls(
            client.ApiClient(configuration),
            namespace,
            workloads,
            authorize,
            name,
            test_job=test_job,
        )

    # ------------------------------------------------------------ helpers

    def target(self, kind: str, name: str) -> str:
        """The name the safety rails see: k8s://CONTEXT/NAMESPACE/KIND/NAME."""
        return f"k8s://{self.context}/{self.namespace}/{kind}/{name}"

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            reason = exc.reason or ""
            raise EnvironmentUnavailable(
                f"Kubernetes {what} in {self.namespace}: {exc.status} {reason}".rstrip()
            ) from None
        except (HTTPError, OSError) as exc:
            host = self.api.configuration.host
            raise EnvironmentUnavailable(f"Kubernetes API {host} unreachable: {exc}") from None

    def _kind(self, workload: str) -> str:
        try:
            return self.workloads[workload]
        except KeyError:
            raise EnvironmentUnavailable(
                f"no workload named {workload!r} in the profile's [services]"
            ) from None

    def _read(self, workload: str) -> Any:
        if self._kind(workload) == "statefulset":
            return self._call(
                "read", self.apps.read_namespaced_stateful_set, workload, self.namespace
            )
        return self._call("read", self.apps.read_namespaced_deployment, workload, self.namespace)

    def _selector(self, workload: str) -> str:
        """The workload's whole selector (matchLabels and matchExpressions); one that
        would select every pod of the namespace is refused."""
        selector = selector_string(self._read(workload).spec.selector)
        return require_narrow(selector, f"{self._kind(workload)}/{workload}")

    def pods(self, selector: str) -> list[Any]:
        found = self._call(
            "list pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector
        )
        return [p for p in found.items if selector_matches(p.metadata.labels, selector)]

    def _watch(self, list_fn: Callable[..., Any], timeout: float, **kwargs: Any) -> Iterator[Any]:
        """Watch events until ``timeout``: asked of the server (timeoutSeconds) and held on
        the client too (a read timeout and a deadline), so a server that keeps the stream
        open never holds a wait past its limit."""
        deadline = time.monotonic() + timeout
        stream = watch.Watch()
        try:
            for event in stream.stream(
                list_fn,
                self.namespace,
                timeout_seconds=max(1, int(timeout)),
                _request_timeout=(5, max(0.5, timeout)),
                **kwargs,
            ):
                yield event
                if time.monotonic() > deadline:
                    return
        except ReadTimeoutError:
            return  # the deadline passed with no event
        except ApiException as exc:
            raise EnvironmentUnavailable(f"Kubernetes watch: {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise EnvironmentUnavailable(f"Kubernetes watch interrupted: {exc}") from None
        finally:
            stream.stop()

    # ------------------------------------------------------------ Platform

    def replicas(self, workload: str) -> int:
        return int(self._read(workload).spec.replicas or 0)

    def scale(self, workload: str, replicas: int) -> None:
        kind = self._kind(workload)
        self.authorize(self.target(kind, workload), f"scale {kind}/{workload} to {replicas}")
        body = {"spec": {"replicas": replicas}}
        if kind == "statefulset":
            self._call(
                "scale", self.apps.patch_namespaced_stateful_set, workload, self.namespace, body
            )
        else:
            self._call(
                "scale", self.apps.patch_namespaced_deployment, workload, self.namespace, body
            )

    def _is_ready(self, obj: Any) -> bool:
        want = int(obj.spec.replicas or 0)
        status = obj.status
        ready = int((status.ready_replicas if status else 0) or 0)
        current = int((status.replicas if status else 0) or 0)
        return ready >= want if want else current == 0

    def wait_ready(self, workload: str, timeout: float) -> float:
        """``kubectl rollout status``: a watch on the workload until ready replicas reach
        the wanted count (or none is left when scaled to 0)."""
        start = time.monotonic()
        if self._is_ready(self._read(workload)):
            return 0.0
        kind = self._kind(workload)
        list_fn = (
            self.apps.list_namespaced_stateful_set
            if kind == "statefulset"
            else self.apps.list_namespaced_deployment
        )
        while (left := timeout - (time.monotonic() - start)) > 0:
            for event in self._watch(list_fn, left, field_selector=f"metadata.name={workload}"):
                obj = event["object"]
                if obj.metadata.name == workload and self._is_ready(obj):
                    return time.monotonic() - start
            if self._is_ready(self._read(workload)):
                return time.monotonic() - start
        raise EnvironmentUnavailable(f"{kind}/{workload} not ready after {timeout:.0f}s")

    def kill(self, workload: str) -> None:
        self._kill_pods(self._selector(workload))

    def _kill_pods(self, selector: str) -> None:
        require_narrow(selector, "pod kill")
        for pod in self.pods(selector):
            self._delete_pod(pod.metadata.name)

    def _delete_pod(self, name: str) -> None:
        self.authorize(self.target("pod", name), "kill pod (grace period 0)")
        self._call(
            "delete pod",
            self.core.delete_namespaced_pod,
            name,
            self.namespace,
            grace_period_seconds=0,
        )

    def kill_and_measure(self, workload: str, timeout: float) -> PodRecovery:
        """Delete the workload's pods (grace 0) and watch their replacements: rescheduled
        when a new pod appears, ready when it reports Ready."""
        selector = self._selector(workload)
        old = {p.metadata.uid for p in self.pods(selector)}
        start = time.monotonic()
        self._kill_pods(selector)
        rescheduled: float | None = None
        while (left := timeout - (time.monotonic() - start)) > 0:
            for event in self._watch(self.core.list_namespaced_pod, left, label_selector=selector):
                pod = event["object"]
                if event["type"] == "DELETED" or pod.metadata.uid in old:
                    continue
                if not selector_matches(pod.metadata.labels, selector):
                    continue
                if rescheduled is None:
                    rescheduled = time.monotonic() - start
                if _ready(pod):
                    return PodRecovery(workload, rescheduled, time.monotonic() - start)
        raise EnvironmentUnavailable(f"{workload}: no ready replacement pod after {timeout:.0f}s")

    def delete_spark_applications(self, selector: str) -> int:
        require_narrow(selector, "SparkApplication stop")
        apps = self._call(
            "list SparkApplications",
            self.custom.list_namespaced_custom_object,
            SPARK_GROUP,
            SPARK_VERSION,
            self.namespace,
            SPARK_PLURAL,
            label_selector=selector,
        )
        deleted = 0
        for item in apps.get("items", []):
            meta = item.get("metadata", {})
            if not selector_matches(meta.get("labels"), selector):
                continue
            self.authorize(self.target("sparkapplication", meta["name"]), "delete SparkApplication")
            self._call(
                "delete SparkApplication",
                self.custom.delete_namespaced_custom_object,
                SPARK_GROUP,
                SPARK_VERSION,
                self.namespace,
                SPARK_PLURAL,
                meta["name"],
            )
            deleted += 1
        return deleted

    def _list_spark_applications(self, namespace: str, **kwargs: Any) -> Any:
        # no ":return:" in a docstring here: the watch then yields the objects as dicts
        return self.custom.list_namespaced_custom_object(
            SPARK_GROUP, SPARK_VERSION, namespace, SPARK_PLURAL, **kwargs
        )

    # ------------------------------------------------------------ evidence

    def logs(self, pod: str, tail_lines: int = 200) -> str:
        text = self._call(
            "read log",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            tail_lines=tail_lines,
        )
        return str(text)

    def events(self, name: str) -> list[str]:
        found = self._call(
            "list events",
            self.core.list_namespaced_event,
            self.namespace,
            field_selector=f"involvedObject.name={name}",
        )
        return [
            f"{e.type or ''} {e.reason or ''}: {e.message or ''}".strip()
            for e in found.items
            if e.involved_object is None or e.involved_object.name in (None, name)
        ]

    def evidence(self, workload: str) -> list[str]:
        """Events of the workload and its pods, and the last log lines of each pod."""
        lines = [f"event {workload}: {e}" for e in self.events(workload)]
        for pod in self.pods(self._selector(workload)):
            name = pod.metadata.name
            lines += [f"event {name}: {e}" for e in self.events(name)]
            try:
                tail = self.logs(name, tail_lines=5).strip().splitlines()
            except EnvironmentUnavailable as exc:
                tail = [f"(log unavailable: {exc})"]
            lines.append(f"log {name}: {' | '.join(tail)}")
        return lines

    # ------------------------------------------------------------ the test job

    def submit_test_job(self, manifest: dict[str, Any], timeout: float) -> TestJobResult:
        """Apply the test SparkApplication, watch it to COMPLETED or FAILED, keep the driver
        log as evidence."""
        name = manifest["metadata"]["name"]
        self.authorize(self.target("sparkapplication", name), "submit the test Spark job")
        start = time.monotonic()
        self._call(
            "create SparkApplication",
            self.custom.create_namespaced_custom_object,
            SPARK_GROUP,
            SPARK_VERSION,
            self.namespace,
            SPARK_PLURAL,
            manifest,
        )
        state = "SUBMITTED"
        while (left := timeout - (time.monotonic() - start)) > 0 and state not in (
            "COMPLETED",
            "FAILED",
        ):
            for event in self._watch(
                self._list_spark_applications, left, field_selector=f"metadata.name={name}"
            ):
                obj = event["object"]
                if obj.get("metadata", {}).get("name") != name:
                    continue
                state = obj.get("status", {}).get("applicationState", {}).get("state", state)
                if state in ("COMPLETED", "FAILED"):
                    break
        if state not in ("COMPLETED", "FAILED"):
            raise EnvironmentUnavailable(f"test job {name} still {state} after {timeout:.0f}s")
        try:
            log = self.logs(f"{name}-driver")
        except EnvironmentUnavailable as exc:
            log = f"(driver log unavailable: {exc})"
        return TestJobResult(name, state, time.monotonic() - start, log)

    def run_test_job(self, timeout: float) -> TestJobResult | None:
        """The profile's test SparkApplication, under a name of its own for this run."""
        if self.test_job is None:
            return None
        manifest = json.loads(json.dumps(self.test_job))
        base = manifest.get("metadata", {}).get("name", "drtests-test-job")
        manifest.setdefault("metadata", {})["name"] = f"{base}-{uuid.uuid4().hex[:6]}"
        manifest["metadata"]["namespace"] = self.namespace
        return self.submit_test_job(manifest, timeout)

    # ------------------------------------------------------------ readiness

    def job_exists(self, name: str) -> bool:
        try:
            self._call("read CronJob", self.batch.read_namespaced_cron_job, name, self.namespace)
        except EnvironmentUnavailable as exc:
            if " 404" in str(exc):
                return False
            raise
        return True

    def last_job_run(self, name: str) -> JobRun | None:
        cron = self._call("read CronJob", self.batch.read_namespaced_cron_job, name, self.namespace)
        status = cron.status
        scheduled = status.last_schedule_time if status else None
        succeeded = status.last_successful_time if status else None
        if scheduled is None and succeeded is None:
            return None
        if succeeded is not None and (scheduled is None or succeeded >= scheduled):
            return JobRun(succeeded, True, "last scheduled run succeeded")
        assert scheduled is not None
        return JobRun(scheduled, False, "the last scheduled run has not succeeded")

    def access_review(
        self, required: tuple[tuple[str, str, str, str], ...] = REQUIRED_ACCESS
    ) -> CheckResult:
        """SelfSubjectAccessReview for every verb the procedures use, in this namespace."""
        result = CheckResult(
            "kubernetes_permissions",
            f"this identity may do what the procedures do in {self.namespace}",
        )
        for verb, group, resource, subresource in required:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                # reviews are not stored; a unique name keeps stores that do from colliding
                "metadata": {"name": f"drtests-{uuid.uuid4().hex[:12]}"},
                "spec": {
                    "resourceAttributes": {
                        "namespace": self.namespace,
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "subresource": subresource,
                    }
                },
            }
            try:
                answer = self._call(
                    "access review", self.access.create_self_subject_access_review, review
                )
            except EnvironmentUnavailable as exc:
                result.error = str(exc)
                return result
            allowed = bool(answer.status and answer.status.allowed)
            if not allowed:
                what = f"{resource}/{subresource}" if subresource else resource
                result.findings.append(Finding(result.name, "error", f"{verb} {what}", "denied"))
        return result


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()


def _current_context(kubeconfig: Path | None) -> str:
    try:
        _, active = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except (config.ConfigException, OSError):
        return "default"
    return str(active.get("name", "default")) if active else "default"
