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
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from drtests.errors import EnvironmentUnavailable
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.postgres import PostgresEndpoint
from drtests.processes import ManagedProcess, free_port, tcp_open

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
        binaries = find_binaries()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.prometheus_port, self.pushgateway_port, self.exporter_port = (
            free_port(),
            free_port(),
            free_port(),
        )
        rules = alert_rules(for_override="0s", window=rate_window)
        for group in rules["groups"]:
            group["rules"] = [r for r in group["rules"] if r["alert"] not in exclude_alerts]
        (workdir / RULES_FILE).write_text(json.dumps(rules))
        scrape = [
            *targets,
            ScrapeTarget("pushgateway", f"127.0.0.1:{self.pushgateway_port}"),
            ScrapeTarget("postgres", f"127.0.0.1:{self.exporter_port}"),
        ]
        config = {
            "global": {
                # the exporter takes about a second to report a database that is down
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(workdir / RULES_FILE)],
            "scrape_configs": [
                {
                    "job_name": t.job,
                    "metrics_path": t.metrics_path,
                    "honor_labels": t.job == "pushgateway",
                    "static_configs": [{"targets": [t.address]}],
                }
                for t in scrape
            ],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))
        self.prometheus = ManagedProcess(
            "prometheus",
            [
                binaries["prometheus"],
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
            workdir / "prometheus.log",
        )
        self.pushgateway = ManagedProcess(
            "pushgateway",
            [binaries["pushgateway"], f"--web.listen-address=127.0.0.1:{self.pushgateway_port}"],
            workdir / "pushgateway.log",
        )
        dsn = postgres.dsn("postgres") + "?sslmode=disable"
        self.exporter = ManagedProcess(
            "postgres-exporter",
            [
                binaries["postgres_exporter"],
                f"--web.listen-address=127.0.0.1:{self.exporter_port}",
            ],
            workdir / "postgres-exporter.log",
            env={"DATA_SOURCE_NAME": dsn, "PATH": "/usr/bin:/bin"},  # the DSN never in argv
        )
        self.api = PrometheusAPI(self.prometheus_url)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://127.0.0.1:{self.pushgateway_port}"

    def start(self, timeout: float = 30) -> None:
        for process, port in (
            (self.pushgateway, self.pushgateway_port),
            (self.exporter, self.exporter_port),
        ):
            process.start()
            process.wait_ready(partial(tcp_open, "127.0.0.1", port), timeout)
        self.prometheus.start()
        self.prometheus.wait_ready(self.api.ready, timeout)

    def stop(self) -> None:
        for process in (self.prometheus, self.exporter, self.pushgateway):
            process.stop()
