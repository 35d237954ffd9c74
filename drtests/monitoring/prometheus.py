"""The Prometheus HTTP API, as the runbook's ``curl …/api/v1/query`` uses it."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from drtests.errors import EnvironmentUnavailable
from drtests.http import request_json
from drtests.processes import http_ok


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusAPI:
    """``timeout`` bounds one request; ``patience`` how long a query that timed out is sent
    again (queries are reads)."""

    def __init__(self, url: str, timeout: float = 10.0, patience: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.patience = patience

    def _get(
        self, path: str, params: dict[str, str] | None = None, deadline: float | None = None
    ) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = request_json(
            "GET",
            f"{self.url}{path}{query}",
            what=f"Prometheus {path}",
            timeout=self.timeout,
            retry_until=deadline or time.monotonic() + self.patience,
        )
        if body.get("status") != "success":
            raise EnvironmentUnavailable(f"Prometheus {self.url}{path}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, deadline: float | None = None) -> list[Sample]:
        """An instant vector (scalars come back as one unlabelled sample)."""
        data = self._get("/api/v1/query", {"query": expr}, deadline)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def alerts(self) -> dict[str, str]:
        """Alert name → state (pending or firing) of the alerts active now."""
        return {a["labels"]["alertname"]: a["state"] for a in self._get("/api/v1/alerts")["alerts"]}

    def rule_names(self) -> set[str]:
        groups = self._get("/api/v1/rules")["groups"]
        return {r["name"] for g in groups for r in g["rules"]}

    def ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def wait_for(self, expr: str, timeout: float = 30.0, interval: float = 0.5) -> list[Sample]:
        """Wait until ``expr`` returns a sample (scrapes and rule evaluations take a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.query(expr, max(deadline, time.monotonic() + self.patience))
            if samples or time.monotonic() > deadline:
                return samples
            time.sleep(interval)
