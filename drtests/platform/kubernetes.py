"""The runbooks' kubectl steps through the official ``kubernetes`` client: scale workloads
(remembering their replica counts; scaled to 0 means no pod is left), wait for readiness by
the rules of ``kubectl rollout status`` with watches that survive a dropped stream, delete
SparkApplications by label and wait for their pods, kill pods with their grace period and
measure recovery as Krkn does, collect logs and events, run the test SparkApplication, read
CronJobs, and ask the API server what this identity may do (SelfSubjectAccessReview).
Every call is listed in one access table, which doctor's reviews and the README's RBAC
Role are made from.

Every mutating call first passes the safety rails (``authorize``): a target off the
allow-list or a dry run sends nothing.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError, ReadTimeoutError

from drtests import patience
from drtests.errors import EnvironmentUnavailable
from drtests.platform import JobRun, PodRecovery, PodTimes, TestJobResult
from drtests.platform.podexec import ExecResult, handshake_status, refusal, run_in_pod
from drtests.platform.portforward import PodPortForward
from drtests.platform.selectors import require_narrow, selector_matches, selector_string
from drtests.results import CheckResult, Finding

SPARK_GROUP, SPARK_VERSION, SPARK_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
#: the label the Spark operator puts on an application's driver and executor pods
SPARK_APP_LABEL = "sparkoperator.k8s.io/app-name"
Authorize = Callable[[str, str], None]

Access = tuple[str, str, str, str]  # verb, API group, resource, subresource

#: every API call the platform makes, by the client method that makes it: the one table
#: behind the calls (an unlisted method is refused), doctor's access reviews and the RBAC
#: Role in the README. A watch is the list method with ``watch=true``: verb ``watch``.
API_CALLS: dict[str, Access] = {
    "read_namespaced_deployment": ("get", "apps", "deployments", ""),
    "read_namespaced_stateful_set": ("get", "apps", "statefulsets", ""),
    # the scale subresource: this identity can change replica counts, not images or commands
    "patch_namespaced_deployment_scale": ("patch", "apps", "deployments", "scale"),
    "patch_namespaced_stateful_set_scale": ("patch", "apps", "statefulsets", "scale"),
    "list_namespaced_pod": ("list", "", "pods", ""),
    "delete_namespaced_pod": ("delete", "", "pods", ""),
    "read_namespaced_pod_log": ("get", "", "pods", "log"),
    "list_namespaced_event": ("list", "", "events", ""),
    "list_namespaced_custom_object": ("list", SPARK_GROUP, SPARK_PLURAL, ""),
    "create_namespaced_custom_object": ("create", SPARK_GROUP, SPARK_PLURAL, ""),
    "delete_namespaced_custom_object": ("delete", SPARK_GROUP, SPARK_PLURAL, ""),
    "read_namespaced_cron_job": ("get", "batch", "cronjobs", ""),
    "create_self_subject_access_review": (
        "create",
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
    ),
}
WATCHED: dict[str, Access] = {
    "list_namespaced_deployment": ("watch", "apps", "deployments", ""),
    "list_namespaced_stateful_set": ("watch", "apps", "statefulsets", ""),
    "list_namespaced_pod": ("watch", "", "pods", ""),
    "_list_spark_applications": ("watch", SPARK_GROUP, SPARK_PLURAL, ""),
}
#: ``kubectl exec`` (Airflow's DagBag in the scheduler's pod): a websocket GET, which API
#: servers authorize as ``get`` and, since Kubernetes 1.35, as ``create`` too
EXEC_ACCESS: tuple[Access, ...] = (("create", "", "pods", "exec"), ("get", "", "pods", "exec"))
#: ``kubectl port-forward`` (Airflow's API and MLflow's tracking server reached from outside
#: the cluster when the profile gives no URL): a websocket GET like exec, authorized alike
PORTFORWARD_ACCESS: tuple[Access, ...] = (
    ("create", "", "pods", "portforward"),
    ("get", "", "pods", "portforward"),
)
#: what a service's restore (§3 Airflow, §4 MLflow) does with its Deployments: read them,
#: scale them, watch them and their pods to ready
DEPLOYMENT_RESTORE_ACCESS: tuple[Access, ...] = (
    API_CALLS["read_namespaced_deployment"],
    API_CALLS["patch_namespaced_deployment_scale"],
    WATCHED["list_namespaced_deployment"],
    API_CALLS["list_namespaced_pod"],
    WATCHED["list_namespaced_pod"],
)
#: what doctor asks the API server (SelfSubjectAccessReviews are allowed to everyone)
REQUIRED_ACCESS: tuple[Access, ...] = tuple(
    sorted(
        {
            a
            for a in (*API_CALLS.values(), *WATCHED.values(), *EXEC_ACCESS, *PORTFORWARD_ACCESS)
            if a[2] != "selfsubjectaccessreviews"
        },
        key=lambda a: (a[1], a[2], a[3], a[0]),
    )
)
#: the Spark operator's CRD (v1beta2) requires these in ``spec``
SPARK_REQUIRED_SPEC = ("driver", "executor", "sparkVersion", "type")
#: what run_test_job appends to the test job's name ("-" and six hex digits)
RUN_SUFFIX = "-xxxxxx"
#: a label value's length limit (the operator labels pods with the application's name)
LABEL_VALUE_MAX = 63
#: how long a deleted pod may take to terminate, past its grace period
TERMINATION_MARGIN_S = 30.0
#: answers of an API server that is restarting, throttling, or whose watch expired
RETRIED_STATUSES = frozenset({410, 429, 500, 502, 503, 504})
T = TypeVar("T")


def rbac_role(name: str = "drtests", namespace: str = "NAMESPACE") -> dict[str, Any]:
    """The namespaced Role that allows exactly what the procedures call."""
    rules: dict[tuple[str, str], set[str]] = {}
    for verb, group, resource, subresource in REQUIRED_ACCESS:
        what = f"{resource}/{subresource}" if subresource else resource
        rules.setdefault((group, what), set()).add(verb)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [
            {"apiGroups": [group], "resources": [what], "verbs": sorted(verbs)}
            for (group, what), verbs in sorted(rules.items())
        ],
    }


def _terminating(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is not None


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
        if test_job is not None:
            check_spark_application(test_job)  # refused now, not after a restore
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
            if (
                kubeconfig is None
                and context is None
                and not os.environ.get("KUBECONFIG")
                and in_cluster()
            ):
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
        name = getattr(fn, "__name__", "")
        if name not in API_CALLS:
            raise EnvironmentUnavailable(f"Kubernetes call {name} is not in the access table")
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            reason = exc.reason or ""
            detail = _message(exc)
            error = KubernetesAPIError(
                f"Kubernetes {what} in {self.namespace}: {exc.status} {reason}{detail}".rstrip(),
                int(exc.status or 0),
            )
            raise error from None
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

    def _selector(self, workload: str, obj: Any = None) -> str:
        """The workload's whole selector (matchLabels and matchExpressions); one that
        would select every pod of the namespace is refused."""
        selector = selector_string((obj or self._read(workload)).spec.selector)
        return require_narrow(selector, f"{self._kind(workload)}/{workload}")

    def pods(self, selector: str, core: client.CoreV1Api | None = None) -> list[Any]:
        found = self._call(
            "list pods",
            (core or self.core).list_namespaced_pod,
            self.namespace,
            label_selector=selector,
        )
        return [p for p in found.items if selector_matches(p.metadata.labels, selector)]

    def _serving_pods(self, selector: str, core: client.CoreV1Api | None = None) -> list[Any]:
        """Ready pods that are not terminating, by name: the first is the one exec and
        port-forward use (a StatefulSet's ``readyReplicas`` still counts a Ready pod in its
        grace period)."""
        pods = [p for p in self.pods(selector, core) if _ready(p) and not _terminating(p)]
        return sorted(pods, key=lambda p: str(p.metadata.name))

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
            if exc.status in RETRIED_STATUSES:  # throttled, restarting, or expired (410)
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                return
            raise KubernetesAPIError(
                f"Kubernetes watch: {exc.status} {exc.reason}", int(exc.status or 0)
            ) from None
        except (HTTPError, OSError, ValueError):
            # a dropped stream (API server restart, idle cut, a torn chunk): the caller
            # reads the state again and watches anew until its own deadline
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            return
        finally:
            stream.stop()

    # ------------------------------------------------------------ Platform

    def exists(self, workload: str) -> bool:
        """Whether the namespace has this workload (an optional component)."""
        try:
            self._read(workload)
        except KubernetesAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def replicas(self, workload: str) -> int:
        return int(self._read(workload).spec.replicas or 0)

    def scale(self, workload: str, replicas: int) -> None:
        kind = self._kind(workload)
        self.authorize(self.target(kind, workload), f"scale {kind}/{workload} to {replicas}")
        body = {"spec": {"replicas": replicas}}
        if kind == "statefulset":
            self._call(
                "scale",
                self.apps.patch_namespaced_stateful_set_scale,
                workload,
                self.namespace,
                body,
            )
        else:
            self._call(
                "scale", self.apps.patch_namespaced_deployment_scale, workload, self.namespace, body
            )
        if replicas == 0:
            # pods terminate over their grace period: until they are gone the service may
            # still hold (or reopen) connections, so "stopped" means no pod is left
            self._wait_pods_gone(
                self._selector(workload),
                f"{kind}/{workload}",
                one_by_one=kind == "statefulset",
            )

    def _wait_pods_gone(
        self, selector: str, what: str, names: set[str] | None = None, one_by_one: bool = False
    ) -> float:
        """Wait until no pod of ``selector`` (or none of ``names``) exists, Terminating ones
        included. The budget is what Kubernetes may take: the longest grace period, or their
        sum when pods go one by one (a StatefulSet's OrderedReady scale-down), plus a
        margin."""
        start = time.monotonic()
        left_pods = self._remaining(selector, names)
        graces = [_grace_seconds(p) for p in left_pods]
        budget = sum(graces) if one_by_one else max(graces, default=0.0)
        timeout = budget + TERMINATION_MARGIN_S
        while left_pods:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                shown = ", ".join(sorted(p.metadata.name for p in left_pods))
                raise EnvironmentUnavailable(
                    f"{what}: pods still there after {timeout:.0f}s: {shown}"
                )
            gone = {p.metadata.name for p in left_pods}
            for event in self._watch(
                self.core.list_namespaced_pod, min(left, 5.0), label_selector=selector
            ):
                if event["type"] == "DELETED":
                    gone.discard(event["object"].metadata.name)
                if not gone:
                    break
            left_pods = self._patiently(
                start + timeout, lambda: self._remaining(selector, names), what
            )
        return time.monotonic() - start

    def _remaining(self, selector: str, names: set[str] | None) -> list[Any]:
        pods = self.pods(selector)
        return [p for p in pods if names is None or p.metadata.name in names]

    def _patiently(self, deadline: float, read: Callable[[], T], what: str) -> T:
        """A read inside a wait: an API server that restarts (unreachable, 429, 5xx) is
        asked again until the wait's deadline."""
        while True:
            try:
                return read()
            except KubernetesAPIError as exc:
                if exc.status not in RETRIED_STATUSES or time.monotonic() >= deadline:
                    raise
            except EnvironmentUnavailable:
                if time.monotonic() >= deadline:
                    raise
            patience.record(retried=True)
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _rolled_out(self, kind: str, obj: Any) -> bool:
        """The rules of ``kubectl rollout status``: the controller has seen the newest
        spec, and every wanted replica is updated and available (Deployment) or ready on
        the current revision (StatefulSet); scaled to 0 when no replica is left."""
        status = obj.status
        if status is None:
            return False
        generation = int(obj.metadata.generation or 0)
        if generation and int(status.observed_generation or 0) < generation:
            return False
        want = 1 if obj.spec.replicas is None else int(obj.spec.replicas)
        if want == 0:
            return int(status.replicas or 0) == 0
        if kind == "statefulset":
            if int(status.ready_replicas or 0) < want:
                return False
            strategy = obj.spec.update_strategy
            if strategy is not None and strategy.type == "OnDelete":
                return True  # kubectl cannot tell a rollout here: ready replicas decide
            rolling = strategy.rolling_update if strategy is not None else None
            partition = int(rolling.partition or 0) if rolling is not None else 0
            if partition:
                return int(status.updated_replicas or 0) >= want - partition
            update, current = status.update_revision, status.current_revision
            return not (update and current and update != current)
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                raise EnvironmentUnavailable(
                    f"deployment/{obj.metadata.name} exceeded its progress deadline: "
                    f"{condition.message or 'rollout stalled'}"
                )
        updated = int(status.updated_replicas or 0)
        if updated < want or int(status.replicas or 0) > updated:
            return False
        return int(status.available_replicas or 0) >= updated

    def _ready_pods(self, selector: str) -> int:
        return len(self._serving_pods(selector))

    def _is_ready(self, kind: str, obj: Any, selector: str) -> bool:
        if not self._rolled_out(kind, obj):
            return False
        want = 1 if obj.spec.replicas is None else int(obj.spec.replicas)
        if want == 0:
            return not self.pods(selector)
        return self._ready_pods(selector) >= want

    def wait_ready(self, workload: str, timeout: float) -> float:
        """``kubectl rollout status``, then the pods themselves: a watch on the workload
        until it is rolled out and as many pods as wanted are Ready and not terminating.
        Every read inside is patient: only the deadline ends the wait."""
        start = time.monotonic()
        deadline = start + timeout
        kind = self._kind(workload)
        what = f"{kind}/{workload}"
        obj = self._patiently(deadline, lambda: self._read(workload), what)
        selector = self._selector(workload, obj)

        def ready(obj: Any) -> bool:
            return self._patiently(deadline, lambda: self._is_ready(kind, obj, selector), what)

        if ready(obj):
            return 0.0
        list_fn = (
            self.apps.list_namespaced_stateful_set
            if kind == "statefulset"
            else self.apps.list_namespaced_deployment
        )
        while (left := deadline - time.monotonic()) > 0:
            for event in self._watch(
                list_fn, min(left, 5.0), field_selector=f"metadata.name={workload}"
            ):
                obj = event["object"]
                if obj.metadata.name == workload and ready(obj):
                    return time.monotonic() - start
            if ready(self._patiently(deadline, lambda: self._read(workload), what)):
                return time.monotonic() - start
        raise EnvironmentUnavailable(f"{what} not ready after {timeout:.0f}s")

    def kill(self, workload: str) -> None:
        self._kill_pods(self._selector(workload))

    def _kill_pods(self, selector: str) -> list[str]:
        """Delete the selected pods with their own grace period, as Krkn does (a force
        delete of a StatefulSet pod can leave two pods with one identity); returns the
        names deleted, a pod that vanished meanwhile counting as deleted."""
        require_narrow(selector, "pod kill")
        names = []
        for pod in self.pods(selector):
            if _terminating(pod):
                continue
            self._delete_pod(pod.metadata.name)
            names.append(pod.metadata.name)
        return names

    def _delete_pod(self, name: str) -> None:
        self.authorize(self.target("pod", name), "kill pod")
        try:
            self._call("delete pod", self.core.delete_namespaced_pod, name, self.namespace)
        except KubernetesAPIError as exc:
            if exc.status != 404:  # gone between list and delete: already what was wanted
                raise

    def kill_and_measure(self, workload: str, timeout: float) -> PodRecovery:
        """Delete the workload's pods and measure their recovery as Krkn does: until as
        many pods are Ready as before the kill, each replacement with its rescheduling
        time (kill → created) and readiness time (created → Ready)."""
        selector = self._selector(workload)
        before = [p for p in self.pods(selector) if not _terminating(p)]
        old = {p.metadata.uid for p in before}
        wanted = max(1, sum(1 for p in before if _ready(p)))
        start = time.monotonic()
        self._kill_pods(selector)
        created: dict[str, float] = {}
        ready: dict[str, float] = {}
        names: dict[str, str] = {}
        while (left := timeout - (time.monotonic() - start)) > 0:
            for event in self._watch(
                self.core.list_namespaced_pod, min(left, 5.0), label_selector=selector
            ):
                pod = event["object"]
                uid = pod.metadata.uid
                if uid in old or not selector_matches(pod.metadata.labels, selector):
                    continue
                if event["type"] == "DELETED" or _terminating(pod):
                    created.pop(uid, None)
                    ready.pop(uid, None)
                    continue
                created.setdefault(uid, time.monotonic() - start)
                names[uid] = pod.metadata.name
                if _ready(pod):
                    ready.setdefault(uid, time.monotonic() - start)
                if len(ready) >= wanted:
                    pods = tuple(
                        PodTimes(names.get(u, u), created[u], ready[u])
                        for u in sorted(ready, key=ready.__getitem__)
                    )
                    return PodRecovery(
                        workload,
                        max(p.rescheduled_s for p in pods),
                        max(p.ready_s for p in pods),
                        pods,
                    )
        raise EnvironmentUnavailable(
            f"{workload}: {len(ready)} of {wanted} replacement pods ready after {timeout:.0f}s"
        )

    def delete_spark_applications(self, selector: str) -> int:
        """Delete the SparkApplications of ``selector`` and wait until their driver and
        executor pods are gone (the operator labels them with the application's name)."""
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
        deleted = []
        for item in apps.get("items", []):
            meta = item.get("metadata", {})
            if not selector_matches(meta.get("labels"), selector):
                continue
            self._delete_spark_application(meta["name"])
            deleted.append(meta["name"])
        for name in deleted:
            self._wait_pods_gone(
                f"{SPARK_APP_LABEL}={name}", f"SparkApplication {name}'s driver and executors"
            )
        return len(deleted)

    def _delete_spark_application(self, name: str) -> None:
        self.authorize(self.target("sparkapplication", name), "delete SparkApplication")
        try:
            self._call(
                "delete SparkApplication",
                self.custom.delete_namespaced_custom_object,
                SPARK_GROUP,
                SPARK_VERSION,
                self.namespace,
                SPARK_PLURAL,
                name,
            )
        except KubernetesAPIError as exc:
            if exc.status != 404:
                raise

    def _list_spark_applications(self, namespace: str, **kwargs: Any) -> Any:
        # no ":return:" in a docstring here: the watch then yields the objects as dicts
        return self.custom.list_namespaced_custom_object(
            SPARK_GROUP, SPARK_VERSION, namespace, SPARK_PLURAL, **kwargs
        )

    # ------------------------------------------------------------ evidence

    def logs(self, pod: str, tail_lines: int = 200, container: str | None = None) -> str:
        """A pod's log; a pod with more than one container (sidecars) needs the
        container's name, or the API server answers 400."""
        extra = {"container": container} if container else {}
        answer = self._call(
            "read log",
            self.core.read_namespaced_pod_log,
            pod,
            self.namespace,
            tail_lines=tail_lines,
            _preload_content=False,  # the raw text: the client would show bytes' repr
            **extra,
        )
        return bytes(answer.data).decode("utf-8", errors="replace")

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
            containers: list[str | None] = [*_log_containers(pod)]
            for container in containers or [None]:
                try:
                    tail = self.logs(name, 5, container).strip().splitlines()
                except EnvironmentUnavailable as exc:
                    tail = [f"(log unavailable: {exc})"]
                label = f"{name}/{container}" if len(containers) > 1 else name
                lines.append(f"log {label}: {' | '.join(tail)}")
        return lines

    # ------------------------------------------------------------ exec

    def exec_in(
        self,
        workload: str,
        argv: list[str],
        *,
        action: str,
        container: str | None = None,
        stdin: bytes | None = None,
        timeout: float = 300.0,
    ) -> ExecResult:
        """``kubectl exec`` into a Ready pod of the workload, in ``container`` or the pod's
        first one (the main container by convention; sidecars follow it). The rails see it
        first: a command run in a live pod is an action on that pod."""
        kind = self._kind(workload)
        ready = self._serving_pods(self._selector(workload))
        if not ready:
            raise EnvironmentUnavailable(f"{kind}/{workload} has no Ready pod to run {argv[0]} in")
        pod = ready[0]
        name = str(pod.metadata.name)
        containers = [c.name for c in (pod.spec.containers if pod.spec else None) or []]
        chosen = container or (containers[0] if containers else None)
        self.authorize(self.target("pod", name), action)
        try:
            return run_in_pod(
                self.api,
                self.namespace,
                name,
                argv,
                container=chosen,
                stdin=stdin,
                timeout=timeout,
            )
        except ApiException as exc:
            raise KubernetesAPIError(
                f"Kubernetes exec in {self.namespace}/{name}: {refusal(exc, 'exec')}",
                handshake_status(exc),
            ) from None

    # ------------------------------------------------------------ port-forward

    def forward(self, workload: str, port: int) -> PodPortForward:
        """``kubectl port-forward KIND/WORKLOAD :PORT``: a local address whose connections
        reach ``port`` of a Ready pod of the workload, chosen per connection (close it
        when done). It changes nothing in the cluster, so the rails are not asked."""
        kind = self._kind(workload)
        selector = self._selector(workload)  # read once: a restore scales, never reselects

        def choose(core: client.CoreV1Api) -> str:
            ready = self._serving_pods(selector, core)
            if not ready:
                raise EnvironmentUnavailable(
                    f"{kind}/{workload} has no Ready pod to forward port {port} to"
                )
            return str(ready[0].metadata.name)

        return PodPortForward(
            self.api, self.namespace, choose, port, f"{kind}/{workload}:{port}", self.timeout
        )

    def require_access(self, needed: tuple[Access, ...], purpose: str) -> None:
        """Refuse, before anything is changed, a procedure whose verbs this identity lacks;
        the message names each missing verb."""
        result = self.access_review(needed)
        if result.error:
            raise EnvironmentUnavailable(result.error)
        if result.findings:
            missing = ", ".join(f.subject for f in result.findings)
            raise EnvironmentUnavailable(
                f"the Kubernetes identity may not {missing} in {self.namespace}, which "
                f"{purpose} needs; nothing was changed (drtests doctor lists every verb)"
            )

    # ------------------------------------------------------------ the test job

    def submit_test_job(self, manifest: dict[str, Any], timeout: float) -> TestJobResult:
        """Apply the test SparkApplication, watch it to COMPLETED or FAILED, keep the driver
        log as evidence."""
        name = manifest["metadata"]["name"]
        check_spark_application(manifest)
        self.authorize(self.target("sparkapplication", name), "submit the test Spark job")
        start = time.monotonic()
        try:  # a create whose answer is lost may still have created it: delete it anyway
            self._call(
                "create SparkApplication",
                self.custom.create_namespaced_custom_object,
                SPARK_GROUP,
                SPARK_VERSION,
                self.namespace,
                SPARK_PLURAL,
                manifest,
            )
            state, last = self._await_application(name, start, timeout)
            driver = _driver_pod(name, manifest, last)
            try:
                log = self.logs(driver, container="spark-kubernetes-driver")
            except EnvironmentUnavailable:
                try:
                    log = self.logs(driver)
                except EnvironmentUnavailable as exc:
                    log = f"(driver log unavailable: {exc})"
            return TestJobResult(name, state, time.monotonic() - start, log)
        finally:
            self._delete_spark_application(name)  # the test job leaves nothing behind

    def _await_application(
        self, name: str, start: float, timeout: float
    ) -> tuple[str, dict[str, Any]]:
        state, last = "SUBMITTED", {}
        while (left := timeout - (time.monotonic() - start)) > 0:
            for event in self._watch(
                self._list_spark_applications,
                min(left, 5.0),
                field_selector=f"metadata.name={name}",
            ):
                obj = event["object"]
                if obj.get("metadata", {}).get("name") != name:
                    continue
                last = obj
                state = obj.get("status", {}).get("applicationState", {}).get("state", state)
                if state in ("COMPLETED", "FAILED"):
                    return state, last
        raise EnvironmentUnavailable(f"test job {name} still {state} after {timeout:.0f}s")

    def run_test_job(self, timeout: float) -> TestJobResult | None:
        """The profile's test SparkApplication, under a name of its own for this run."""
        if self.test_job is None:
            return None
        manifest = json.loads(json.dumps(self.test_job))
        base = manifest.get("metadata", {}).get("name", "drtests-test-job")
        manifest.setdefault("metadata", {})["name"] = (
            f"{base}{RUN_SUFFIX[:1]}{uuid.uuid4().hex[:6]}"
        )
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
        active = bool(status and status.active)
        if cron.spec is not None and cron.spec.suspend:
            when = succeeded or scheduled or cron.metadata.creation_timestamp or datetime.now(UTC)
            return JobRun(when, False, "the CronJob is suspended: no run is scheduled")
        if active and succeeded is not None:
            # the newest run is still going: judge the last one that ended
            return JobRun(succeeded, True, "last completed run succeeded; a run is in progress")
        if succeeded is None and (scheduled is None or active):
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


DEFAULT_KUBECONFIG = Path("~/.kube/config")


def in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()


def _current_context(kubeconfig: Path | None) -> str:
    try:
        _, active = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except (config.ConfigException, OSError):
        return "default"
    return str(active.get("name", "default")) if active else "default"


class KubernetesAPIError(EnvironmentUnavailable):
    """The API server answered with an error status (kept: 404 and 403 mean different
    things to the caller)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _message(exc: ApiException) -> str:
    """The Status message of an error answer (e.g. which field a 422 is about)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if message else ""


def _grace_seconds(pod: Any) -> float:
    meta_grace = pod.metadata.deletion_grace_period_seconds
    spec_grace = pod.spec.termination_grace_period_seconds if pod.spec else None
    for value in (meta_grace, spec_grace):
        if value is not None:
            return float(value)
    return 30.0  # Kubernetes' default terminationGracePeriodSeconds


def _driver_pod(name: str, manifest: dict[str, Any], applied: dict[str, Any]) -> str:
    """The driver pod's name as the Spark operator reports it (status.driverInfo), as
    the manifest asks for it (spec.driver.podName), or the operator's default."""
    reported = applied.get("status", {}).get("driverInfo", {}).get("podName")
    asked = manifest.get("spec", {}).get("driver", {}).get("podName")
    return str(reported or asked or f"{name}-driver")


def check_spark_application(manifest: dict[str, Any]) -> None:
    """Refuse a SparkApplication the operator's CRD would reject (422), before anything
    is changed rather than at the last step of a restore."""
    if manifest.get("kind") != "SparkApplication":
        raise EnvironmentUnavailable(
            f"test job manifest: kind is {manifest.get('kind')!r}, not SparkApplication"
        )
    api_version = f"{SPARK_GROUP}/{SPARK_VERSION}"
    if manifest.get("apiVersion") != api_version:
        raise EnvironmentUnavailable(
            f"test job manifest: apiVersion is {manifest.get('apiVersion')!r}; this version "
            f"of drtests submits {api_version}"
        )
    name = str(manifest.get("metadata", {}).get("name", "drtests-test-job"))
    if len(name) + len(RUN_SUFFIX) > LABEL_VALUE_MAX:
        raise EnvironmentUnavailable(
            f"test job manifest: metadata.name {name!r} is too long: with the run's suffix it "
            f"must fit the operator's {LABEL_VALUE_MAX}-character app-name label"
        )
    spec = manifest.get("spec")
    missing = [f for f in SPARK_REQUIRED_SPEC if not isinstance(spec, dict) or f not in spec]
    if missing:
        raise EnvironmentUnavailable(
            "test job manifest: spec lacks the fields the SparkApplication CRD requires: "
            + ", ".join(f"spec.{f}" for f in missing)
        )


def _log_containers(pod: Any) -> list[str]:
    """The containers that write logs while the pod runs: its containers and its native
    sidecars (init containers that keep running, ``restartPolicy: Always``)."""
    spec = pod.spec
    if spec is None:
        return []
    sidecars = [
        c.name for c in spec.init_containers or [] if getattr(c, "restart_policy", None) == "Always"
    ]
    return [*(c.name for c in spec.containers or []), *sidecars]
