"""Restore progress pushed to a Prometheus Pushgateway, the standard for batch jobs: per
procedure and step, completion, step durations and status, database connection, service
health and errors, so a Grafana dashboard shows the game day live."""

from __future__ import annotations

import logging
import time
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

from drtests.http import retry_transient, timed_out
from drtests.load import client_url

JOB = "drtests"
# every scenario is fault → detect → restore → verify → record: completion is the share of
# these phases done, the same scale for every procedure
PHASES = ("incident", "detected", "restored", "verified", "recorded")
log = logging.getLogger(__name__)


class ProgressPusher:
    """One registry per run; every update is pushed at once (a game day is long, slow work).
    A Pushgateway that goes away never stops a restore: the failure is logged and counted.
    One that is slow gets the push again until ``patience`` runs out."""

    def __init__(
        self, url: str, run_id: str, timeout: float = 10.0, patience: float = 30.0
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.patience = patience
        self.grouping = {"run_id": run_id}
        self.failures = 0
        self.registry = CollectorRegistry()
        labels = ["procedure", "scenario"]
        self.completion = Gauge(
            "drtests_restore_completion_ratio",
            "share of the procedure's steps done",
            labels,
            registry=self.registry,
        )
        self.step_seconds = Gauge(
            "drtests_step_duration_seconds",
            "duration of each finished step",
            [*labels, "step"],
            registry=self.registry,
        )
        self.step_ok = Gauge(
            "drtests_step_ok",
            "1 when the step succeeded",
            [*labels, "step"],
            registry=self.registry,
        )
        self.errors = Counter("drtests_errors", "failed steps", labels, registry=self.registry)
        self.database_up = Gauge(
            "drtests_database_up",
            "1 while the restore target's database answers",
            ["database"],
            registry=self.registry,
        )
        self.service_ready = Gauge(
            "drtests_service_ready",
            "1 while the service is ready",
            ["service"],
            registry=self.registry,
        )

    def step_finished(
        self, procedure: str, scenario: str, step: str, seconds: float, ok: bool
    ) -> None:
        self.step_seconds.labels(procedure, scenario, step).set(seconds)
        self.step_ok.labels(procedure, scenario, step).set(1 if ok else 0)
        if not ok:
            self.errors.labels(procedure, scenario).inc()
        self.push()

    def phase(self, procedure: str, scenario: str, phase: str) -> None:
        done = (PHASES.index(phase) + 1) / len(PHASES)
        self.completion.labels(procedure, scenario).set(done)
        self.push()

    def database(self, name: str, up: bool) -> None:
        self.database_up.labels(name).set(1 if up else 0)
        self.push()

    def service(self, name: str, ready: bool) -> None:
        self.service_ready.labels(name).set(1 if ready else 0)
        self.push()

    def push(self) -> None:
        def attempt(timeout: float) -> None:
            push_to_gateway(
                client_url(self.url),
                job=JOB,
                registry=self.registry,
                grouping_key=self.grouping,
                timeout=timeout,
            )

        try:
            retry_transient(
                attempt, self.timeout, time.monotonic() + self.patience, retry_if=timed_out
            )
        except (URLError, OSError) as exc:
            self.failures += 1
            log.warning("progress not pushed to %s: %s", self.url, exc)
