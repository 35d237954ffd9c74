"""The embedded environment's workloads: real local processes, scaled 0↔1, killed with -9,
ready when their readiness probe (HTTP endpoint, Thrift call) says so."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from drtests.errors import DRError, EnvironmentUnavailable
from drtests.objectstore import S3Endpoint
from drtests.platform import JobRun, PodRecovery, TestJobResult
from drtests.processes import ManagedProcess, Supervised, free_port, http_ok, wait_until


@dataclass
class _Workload:
    process: Supervised
    probe: Callable[[], bool]
    replicas: int = 0
    restarts: list[float] = field(default_factory=list)  # monotonic times of restarts


class LocalPlatform:
    """A tiny supervisor with the vocabulary of ``kubectl scale`` and ``kubectl wait``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._workloads: dict[str, _Workload] = {}
        self._addresses: dict[str, str] = {}
        self._jobs: dict[str, Callable[[], str]] = {}
        self._lock = threading.RLock()
        self._test_job_env: dict[str, str] | None = None
        self._job_runs: dict[str, JobRun] = {}

    def add_metastore_service(self, name: str, dsn: str) -> str:
        """Register the metastore front end; returns its readiness URL. The DSN travels in
        the environment, not on the command line."""
        env = {**_base_env(), "DRTESTS_BACKEND_DSN": dsn}
        return self._add(name, ["--backend-dsn-env", "DRTESTS_BACKEND_DSN"], env)

    def add_dependent_service(self, name: str, depends_on_url: str) -> None:
        self._add(name, ["--depends-on", depends_on_url], _base_env())

    def _add(self, name: str, role_args: list[str], env: dict[str, str]) -> str:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "drtests.platform.service",
            "--name",
            name,
            "--port",
            str(port),
            *role_args,
        ]
        process = ManagedProcess(name, argv, self.workdir / f"{name}.log", env=env)
        health_url = f"http://127.0.0.1:{port}/healthz"
        self.add_process(name, process, lambda: http_ok(health_url))
        self._addresses[name] = f"127.0.0.1:{port}"
        return health_url

    def set_test_job(self, dsn: str, s3: S3Endpoint) -> None:
        """The test job reads this metastore database and the data it points to."""
        from drtests.platform.testjob import DSN_ENV, S3_ENV

        self._test_job_env = {
            **_base_env(),
            DSN_ENV: dsn,
            **dict(
                zip(
                    S3_ENV,
                    (s3.endpoint_url or "", s3.access_key_id or "", s3.secret_access_key or ""),
                    strict=True,
                )
            ),
        }

    def run_test_job(self, timeout: float) -> TestJobResult | None:
        if self._test_job_env is None:
            return None
        start = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "drtests.platform.testjob"],
                env=self._test_job_env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return TestJobResult("test-job", "FAILED", timeout, f"still running after {timeout}s")
        state = "COMPLETED" if done.returncode == 0 else "FAILED"
        log = (done.stdout + done.stderr).strip()
        return TestJobResult("test-job", state, time.monotonic() - start, log)

    def address(self, workload: str) -> str:
        """host:port of a workload's HTTP endpoint (readiness, metrics)."""
        self._get(workload)
        return self._addresses[workload]

    def add_process(self, name: str, process: Supervised, probe: Callable[[], bool]) -> None:
        """Supervise an existing service process (the real HMS) or container under a
        workload name."""
        self._workloads[name] = _Workload(process, probe)

    def _get(self, workload: str) -> _Workload:
        try:
            return self._workloads[workload]
        except KeyError:
            raise EnvironmentUnavailable(
                f"no workload named {workload!r} on the local platform"
            ) from None

    def replicas(self, workload: str) -> int:
        return self._get(workload).replicas

    def scale(self, workload: str, replicas: int) -> None:
        item = self._get(workload)
        if replicas not in (0, 1):
            raise ValueError("local workloads run 0 or 1 replica")
        with self._lock:
            item.replicas = replicas
            if replicas == 0:
                item.process.stop()
            else:
                item.process.start()

    # ------------------------------------------------------------ supervision

    def supervise(self) -> None:
        """Restart workloads that should run but do not, as a ReplicaSet and the kubelet
        do (restartPolicy Always, no back-off)."""
        _Supervisor.watch(self)

    def restart_missing(self) -> None:
        with self._lock:
            for item in self._workloads.values():
                if item.replicas and not item.process.running():
                    item.process.start()
                    item.restarts.append(time.monotonic())

    def kill_and_measure(self, workload: str, timeout: float) -> PodRecovery:
        """kill -9 the workload's process tree and measure its recovery under supervision."""
        item = self._get(workload)
        self.supervise()
        killed = time.monotonic()
        with self._lock:
            item.process.kill()

        wait_until(lambda: any(t >= killed for t in item.restarts), timeout, f"{workload} restart")
        rescheduled = next(t for t in item.restarts if t >= killed) - killed
        item.process.wait_ready(item.probe, timeout)
        return PodRecovery(workload, rescheduled, time.monotonic() - killed)

    def wait_ready(self, workload: str, timeout: float) -> float:
        item = self._get(workload)
        if item.replicas == 0:
            return 0.0
        return item.process.wait_ready(item.probe, timeout)

    def ready(self, workload: str) -> bool:
        item = self._get(workload)
        return item.process.running() and item.probe()

    def evidence(self, workload: str) -> list[str]:
        """The workload's last log lines (a local process has no events)."""
        item = self._get(workload)
        return [f"log {item.process.log_name}: {item.process.log_tail(5)}"]

    def kill(self, workload: str) -> None:
        with self._lock:
            self._get(workload).process.kill()

    def delete_spark_applications(self, selector: str) -> int:
        return 0  # no Spark operator locally: nothing runs as a SparkApplication

    # ------------------------------------------------------------ scheduled jobs

    def add_job(self, name: str, run: Callable[[], str]) -> None:
        """A scheduled job (the runbooks' CronJobs); ``run`` returns a one-line result and
        raises when the job fails."""
        self._jobs[name] = run

    def run_job(self, name: str) -> JobRun:
        """Run a job now, as its schedule would, and remember the run."""
        if name not in self._jobs:
            raise EnvironmentUnavailable(f"no job named {name!r} on the local platform")
        started = datetime.now(UTC)
        try:
            detail, ok = self._jobs[name](), True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        self._job_runs[name] = JobRun(started, ok, detail)
        return self._job_runs[name]

    def job_exists(self, name: str) -> bool:
        return name in self._jobs

    def last_job_run(self, name: str) -> JobRun | None:
        return self._job_runs.get(name)

    def stop_supervising(self) -> None:
        _Supervisor.unwatch(self)

    def stop_all(self) -> None:
        """Every workload stopped gracefully, all at once (as a namespace's pods end
        together): the time is the slowest stop's, not their sum."""
        self.stop_supervising()
        items = list(self._workloads.values())
        with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
            list(pool.map(lambda item: item.process.stop(), items))
        for item in items:
            item.replicas = 0


class _Supervisor:
    """One thread for the whole run that restarts what supervised platforms miss. It lives
    as long as the run: a child's death signal (PR_SET_PDEATHSIG) follows the thread that
    started it, so a thread that ended would take the restarted processes with it."""

    _platforms: ClassVar[set[LocalPlatform]] = set()
    _lock = threading.Lock()
    _thread: ClassVar[threading.Thread | None] = None

    @classmethod
    def watch(cls, platform: LocalPlatform) -> None:
        with cls._lock:
            cls._platforms.add(platform)
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._loop, name="supervisor", daemon=True)
                cls._thread.start()

    @classmethod
    def unwatch(cls, platform: LocalPlatform) -> None:
        with cls._lock:
            cls._platforms.discard(platform)

    @classmethod
    def _loop(cls) -> None:
        while True:
            time.sleep(0.05)
            with cls._lock:
                platforms = list(cls._platforms)
            for platform in platforms:
                # an engine that does not answer for a moment is asked again next tick
                with contextlib.suppress(DRError):
                    platform.restart_missing()


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
