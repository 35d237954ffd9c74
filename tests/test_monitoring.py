"""Monitoring parts that must not take a run down or leak: an unreachable Pushgateway or
Prometheus, missing Debian packages, the exporter's credentials; the shipped rules and
dashboard stay well-formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drtests.config import MonitoringSettings
from drtests.errors import EnvironmentUnavailable
from drtests.monitoring import stack
from drtests.monitoring.dashboard import dashboard, panel_queries
from drtests.monitoring.health import check_health, health_queries
from drtests.monitoring.progress import ProgressPusher
from drtests.monitoring.prometheus import PrometheusAPI
from drtests.monitoring.stack import LocalMonitoring, alert_rules
from drtests.postgres import PostgresEndpoint
from drtests.processes import free_port

SECRET = "exporter-s3cret"


def test_unreachable_pushgateway_never_stops_a_restore() -> None:
    pusher = ProgressPusher(f"http://127.0.0.1:{free_port()}", "run-1")
    pusher.step_finished("hms_full_restore", "s1", "Restore database", 1.5, True)
    pusher.phase("hms_full_restore", "s1", "verified")
    assert pusher.failures == 2


def test_unreachable_prometheus_is_a_failed_check_not_a_crash() -> None:
    """Every health check fails naming the endpoint; Prometheus is given its patience once,
    not once per query."""
    api = PrometheusAPI(f"http://127.0.0.1:{free_port()}", timeout=1, patience=3)
    results = check_health(api, MonitoringSettings())
    assert results and all(r.error and "unreachable" in r.error for r in results)
    assert len({r.error for r in results}) == 1, "each query waited out its own patience"


def test_runbook_thresholds_are_in_the_queries() -> None:
    settings = MonitoringSettings()
    queries = {q.name: q for q in health_queries(settings)}
    assert queries["health_error_rate"].limit == 10
    assert queries["health_p95_latency"].limit == 5
    assert queries["health_connection_pool"].limit == pytest.approx(0.8)
    assert queries["health_heap"].limit == pytest.approx(0.85)
    assert 'up{job="hive-metastore"}' in queries["health_service_up"].expr


def test_local_rules_compress_time_only() -> None:
    shipped = alert_rules()
    local = alert_rules(for_override="0s", window="30s")
    names = [r["alert"] for g in shipped["groups"] for r in g["rules"]]
    assert {"HiveMetastoreDown", "HiveMetastoreHighErrorRate"} <= set(names)
    for ship, loc in zip(shipped["groups"][0]["rules"], local["groups"][0]["rules"], strict=True):
        assert loc["for"] == "0s"
        assert loc["expr"] == ship["expr"].replace("[5m]", "[30s]")
    assert shipped["groups"][0]["rules"][0]["for"] == "5m"


def test_dashboard_is_valid_and_fills_its_variables() -> None:
    data = dashboard()
    assert data["title"] == "Restore Progress"
    queries = panel_queries("run-7", "1m")
    assert queries and all("$" not in expr for _, expr in queries)
    assert any('run_id=~"run-7"' in expr for _, expr in queries)
    json.dumps(data)


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentUnavailable, match="apt-get install prometheus"):
        stack.find_binaries()


def test_exporter_credentials_only_in_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(stack, "find_binaries", lambda: dict.fromkeys(stack.BINARIES, "/bin/true"))
    endpoint = PostgresEndpoint("127.0.0.1", 5432, "postgres", SECRET, tmp_path)
    monitoring = LocalMonitoring(tmp_path, endpoint, [], exclude_alerts=("HiveMetastoreDown",))
    for process in (monitoring.prometheus, monitoring.pushgateway, monitoring.exporter):
        assert not any(SECRET in arg for arg in process.argv)
    for path in tmp_path.iterdir():
        if path.is_file():
            assert SECRET not in path.read_text()
    assert monitoring.exporter.env is not None
    assert SECRET in monitoring.exporter.env["DATA_SOURCE_NAME"]
    rules = json.loads((tmp_path / stack.RULES_FILE).read_text())
    assert "HiveMetastoreDown" not in {r["alert"] for g in rules["groups"] for r in g["rules"]}
