"""The shipped Grafana dashboard "Restore Progress", and its queries as Prometheus would
receive them from Grafana (template variables filled in)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

DASHBOARD_FILE = "restore-progress.dashboard.json"


def dashboard() -> dict[str, Any]:
    text = files("drtests.monitoring").joinpath(DASHBOARD_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def panel_queries(run_id: str, rate_interval: str) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = (
                target["expr"].replace("$run_id", run_id).replace("$__rate_interval", rate_interval)
            )
            queries.append((panel["title"], expr))
    return queries
