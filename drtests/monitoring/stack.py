"""The embedded environment's monitoring: Debian's Prometheus, Pushgateway and PostgreSQL
exporter on loopback, scraping the local metastore service, with the runbook's alert rules.

The rule files are the ones shipped for live use; locally time is compressed: ``for:`` is
zero and rate windows are the profile's ``rate_window`` (30 s locally instead of 5 min), so
an alert fires within seconds of its condition holding — a game day cannot wait five
minutes per alert.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from drtests.errors import EnvironmentUnavailable
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.postgres import PostgresEndpoint
from drtests.processes import ManagedProcess, free_port, http_ok

RULES_FILE = "hive-metastore.rules.yml"
BINARIES = {
    "prometheus": "prometheus",
    "pushgateway": "prometheus-pushgateway",
    "postgres_exporter": "prometheus-postgres-exporter",
}
INSTALL_HINT = "apt-get install prometheus prometheus-pushgateway prometheus-postgres-exporter"


SHIPPED_WINDOW = "[5m]"


def alert_rules(for_override: str | None = None, window: str | None = None) -> dict[str, Any]:
    """The shipped alert rules, optionally with every ``for:`` and rate window replaced."""
    text = files("drtests.monitoring").joinpath(RULES_FILE).read_text(encoding="utf-8")
    rules: dict[str, Any] = yaml.safe_load(text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if for_override is not None:
                rule["for"] = for_override
            if window is not None:
                rule["expr"] = rule["expr"].replace(SHIPPED_WINDOW, f"[{window}]")
    return rules


def find_binaries() -> dict[str, str]:
    found = {name: shutil.which(binary) for name, binary in BINARIES.items()}
    missing = [BINARIES[name] for name, path in found.items() if path is None]
    if missing:
        raise EnvironmentUnavailable(
            f"monitoring stack unavailable: missing {', '.join(missing)}; {INSTALL_HINT}"
        )
    return {name: str(path) for name, path in found.items()}


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    metrics_path: str = "/metrics"


class LocalMonitoring:
    """Prometheus (2 s scrapes, 1 s rule evaluations), a Pushgateway and a PostgreSQL
    exporter for the metastore's server; each a child process of the run."""

    def __init__(
        self,
        workdir: Path,
        postgres: PostgresEndpoint,
        targets: list[ScrapeTarget],
        rate_window: str = "30s",
        exclude_alerts: tuple[str, ...] = (),
    ) -> None:
        self.binaries = find_binaries()
        self.workdir = workdir
        self.targets = targets
        workdir.mkdir(parents=True, exist_ok=True)
        rules = alert_rules(for_override="0s", window=rate_window)
        for group in rules["groups"]:
            group["rules"] = [r for r in group["rules"] if r["alert"] not in exclude_alerts]
        (workdir / RULES_FILE).write_text(json.dumps(rules))
        self._dsn = postgres.dsn("postgres") + "?sslmode=disable"
        self.pushgateway_port = self.exporter_port = self.prometheus_port = 0
        self.pushgateway = self._pushgateway(free_port())
        self.exporter = self._exporter(free_port())
        self.prometheus = self._prometheus(free_port())

    # each server gets a fresh port; one another process took in the meantime means a retry

    def _pushgateway(self, port: int) -> ManagedProcess:
        self.pushgateway_port = port
        return ManagedProcess(
            "pushgateway",
            [self.binaries["pushgateway"], f"--web.listen-address=127.0.0.1:{port}"],
            self.workdir / "pushgateway.log",
        )

    def _exporter(self, port: int) -> ManagedProcess:
        self.exporter_port = port
        return ManagedProcess(
            "postgres-exporter",
            [self.binaries["postgres_exporter"], f"--web.listen-address=127.0.0.1:{port}"],
            self.workdir / "postgres-exporter.log",
            env={"DATA_SOURCE_NAME": self._dsn, "PATH": "/usr/bin:/bin"},  # never in argv
        )

    def _prometheus(self, port: int) -> ManagedProcess:
        self.prometheus_port = port
        self.api = PrometheusAPI(self.prometheus_url)
        return ManagedProcess(
            "prometheus",
            [
                self.binaries["prometheus"],
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            self.workdir / "prometheus.log",
        )

    def _write_config(self) -> None:
        scrape = [
            *self.targets,
            ScrapeTarget("pushgateway", f"127.0.0.1:{self.pushgateway_port}"),
            ScrapeTarget("postgres", f"127.0.0.1:{self.exporter_port}"),
        ]
        config = {
            "global": {
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(self.workdir / RULES_FILE)],
            "scrape_configs": [
                {
                    "job_name": t.job,
                    "metrics_path": t.metrics_path,
                    "honor_labels": t.job == "pushgateway",
                    "static_configs": [{"targets": [t.address]}],
                    # the exporter queries every statistics view: slower on a busy server
                    **(
                        {"scrape_interval": "5s", "scrape_timeout": "5s"}
                        if t.job == "postgres"
                        else {}
                    ),
                }
                for t in scrape
            ],
        }
        (self.workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://127.0.0.1:{self.pushgateway_port}"

    def _launch(
        self,
        process: ManagedProcess,
        rebuild: Callable[[int], ManagedProcess],
        ready: Callable[[], bool],
        timeout: float,
    ) -> ManagedProcess:
        for _attempt in range(3):
            process.start()
            try:
                process.wait_ready(ready, timeout)
                time.sleep(0.2)  # a port someone else took answers too: ours must still run
                if process.running():
                    return process
            except EnvironmentUnavailable:
                if "address already in use" not in process.log_tail(5):
                    raise
            process.stop()
            process = rebuild(free_port())
        raise EnvironmentUnavailable(f"{process.name}: no free port after 3 attempts")

    def start(self, timeout: float = 30) -> None:
        self.pushgateway = self._launch(
            self.pushgateway,
            self._pushgateway,
            lambda: http_ok(f"{self.pushgateway_url}/-/ready"),
            timeout,
        )
        self.exporter = self._launch(
            self.exporter,
            self._exporter,
            lambda: http_ok(f"http://127.0.0.1:{self.exporter_port}/"),
            timeout,
        )
        self._write_config()
        self.prometheus = self._launch(
            self.prometheus, self._prometheus, lambda: self.api.ready(), timeout
        )

    def stop(self) -> None:
        for process in (self.prometheus, self.exporter, self.pushgateway):
            process.stop()
