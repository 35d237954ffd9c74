"""Airflow's REST API (v2), as an operator uses it after a restore."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from drtests.errors import RestoreFailed
from drtests.http import HTTPStatusError, request_json

COMPONENTS = ("metadatabase", "scheduler", "dag_processor")


class AirflowAPI:
    """``timeout`` bounds one request; ``patience`` how long a call retries requests that
    timed out or met a restarting server (a busy API server is slow, not broken)."""

    def __init__(self, url: str, timeout: float = 10.0, patience: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.patience = patience

    def _call(self, method: str, path: str, body: Any = None, deadline: float | None = None) -> Any:
        return request_json(
            method,
            f"{self.url}/api/v2{path}",
            body,
            what=f"Airflow API {path}",
            timeout=self.timeout,
            retry_until=deadline or time.monotonic() + self.patience,
        )

    def unhealthy(self) -> dict[str, str]:
        """Components the health endpoint does not report healthy, with their status."""
        health = self._call("GET", "/monitor/health")
        return {
            name: str(health.get(name, {}).get("status"))
            for name in COMPONENTS
            if health.get(name, {}).get("status") != "healthy"
        }

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self._call("GET", "/dags?limit=1000").get("dags", [])}

    def run_dag(self, dag_id: str, run_id: str, timeout: float) -> tuple[str, float]:
        """Unpause, trigger and wait for the run to end: scheduler, a worker and the API
        server all take part. Returns the end state and the seconds it took."""
        quoted = urllib.parse.quote(dag_id)
        run_path = f"/dags/{quoted}/dagRuns/{urllib.parse.quote(run_id)}"
        start = time.monotonic()
        deadline = start + timeout
        self._call("PATCH", f"/dags/{quoted}", {"is_paused": False}, deadline)
        try:
            # the run id is fixed, so a retried trigger cannot start a second run
            self._call(
                "POST",
                f"/dags/{quoted}/dagRuns",
                {"logical_date": None, "dag_run_id": run_id},
                deadline,
            )
        except HTTPStatusError as exc:
            if exc.status != 409:  # 409: an attempt that timed out had created it
                raise
        state = "queued"
        while time.monotonic() < deadline:
            state = self._call("GET", run_path, deadline=deadline)["state"]
            if state in ("success", "failed"):
                return state, time.monotonic() - start
            time.sleep(0.5)
        raise RestoreFailed(f"DAG run {dag_id}/{run_id} still {state} after {timeout:.0f}s")
