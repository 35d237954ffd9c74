"""Monitoring during and after a restore (runbooks 000 "Grafana Dashboard", 002 "Monitor
Metastore Health"), against a real Prometheus, Pushgateway and PostgreSQL exporter:

- restore progress pushed while the procedure runs, queried back from Prometheus;
- post-restore health: the runbook's expressions held against its thresholds — they pass
  after a good restore and fail while the metastore's database is down;
- the alert rules fire when their condition holds and clear when it is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from drtests.backups import BackupCatalog
from drtests.environments import Environment
from drtests.faults import BlankStorageLocations
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.monitoring.dashboard import panel_queries
from drtests.monitoring.health import check_health
from drtests.monitoring.progress import ProgressPusher
from drtests.monitoring.stack import LocalMonitoring
from drtests.plugin import DRSession
from drtests.procedures import RUNBOOK_HMS, MetastoreRestoreTarget, hms_full_restore
from drtests.processes import wait_until
from drtests.results import failed

pytestmark = [pytest.mark.gameday, pytest.mark.metastore, pytest.mark.monitoring]
TABLE = ("production_critical", "fact_table")


@pytest.fixture
def pushed_progress(dr: DRSession, monitoring: LocalMonitoring) -> Iterator[ProgressPusher]:
    """This scenario's progress goes to the local Pushgateway (unless the run pushes to
    one of its own)."""
    before = dr.progress
    dr.progress = before or ProgressPusher(monitoring.pushgateway_url, dr.run_id)
    yield dr.progress
    dr.progress = before


@pytest.mark.destructive
def test_restore_progress_and_health_in_prometheus(
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
    backup_catalog: BackupCatalog,
    inject_fault: InjectFault,
    monitoring: LocalMonitoring,
    pushed_progress: ProgressPusher,
) -> None:
    """Option 1 with progress pushed step by step; verification includes the health
    queries, evaluated by Prometheus over what it scraped during the restore."""
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Full restore watched on the Restore Progress dashboard",
        f"{RUNBOOK_HMS} · Remediation Option 1 · Monitor Metastore Health",
    )
    scenario.authorize(backup_catalog.target, "write a metastore backup")
    baseline = metastore.baseline()
    backup = backup_catalog.create(metastore.target.endpoint, metastore.target.database)
    changes_before_fault = metastore.change_log()
    scenario.incident()
    fault = BlankStorageLocations(*TABLE)
    inject_fault(fault)
    scenario.detected(metastore.detect(baseline), fault.detected_by)
    assert scenario.incident_time is not None
    hms_full_restore(
        metastore_services,
        backup_catalog,
        datetime.fromtimestamp(scenario.incident_time, UTC),
        scenario.journal,
    )
    scenario.restored(backup.uri)

    api = monitoring.api
    health = check_health(api, dr.profile.monitoring, wait_for_data=60)
    assert scenario.verified([*metastore.verify(baseline), *health]), failed(health)

    run = f'run_id="{dr.run_id}",scenario="{scenario.record.scenario_id}"'
    completion = api.wait_for(f"drtests_restore_completion_ratio{{{run}}} >= 0.8")
    assert completion and completion[0].value == pytest.approx(0.8)
    steps = {s.labels["step"] for s in api.wait_for(f"drtests_step_duration_seconds{{{run}}}")}
    assert {"Restore database", "Verify checksum", "Scale up metastore and wait ready"} <= steps
    assert pushed_progress.failures == 0
    # the shipped dashboard shows this run: every panel's query runs, progress panels have data
    for title, expr in panel_queries(dr.run_id, dr.profile.monitoring.rate_window):
        samples = api.query(expr)
        if title in ("Restore completion", "Step durations", "Service health"):
            assert samples, f"dashboard panel {title!r} shows nothing"
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, metastore.change_log(), scenario.incident_time)
    )
    scenario.assert_objectives_met()


@pytest.mark.destructive
@pytest.mark.negative_control
def test_health_fails_and_alerts_fire_while_the_database_is_down(
    dr: DRSession,
    dr_environment: Environment,
    scenario: ScenarioRecorder,
    metastore_services: MetastoreRestoreTarget,
    monitoring: LocalMonitoring,
) -> None:
    """The metastore's PostgreSQL stops: the health checks fail, HiveMetastoreDatabaseDown
    and HiveMetastoreHighErrorRate fire; with the server back the database alert clears."""
    server = dr_environment.postgres_server
    if server is None:
        pytest.skip("stopping the database needs a server this run owns (local or containers)")
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Metastore database down: health checks and alerts",
        f"{RUNBOOK_HMS} · Monitor Metastore Health",
        kind="negative-control",
    )
    api = monitoring.api
    wait_until(lambda: bool(api.query("pg_up == 1")), 30, "first scrape of the exporter")
    assert "HiveMetastoreDatabaseDown" not in api.alerts()
    scenario.authorize(dr_environment.pg_target("*"), "stop the metastore's PostgreSQL")
    scenario.incident()
    server.stop()
    try:
        wait_until(lambda: api.alerts().get("HiveMetastoreDatabaseDown") == "firing", 30, "alert")
        wait_until(lambda: api.alerts().get("HiveMetastoreHighErrorRate") == "firing", 30, "alert")
        down = check_health(api, dr.profile.monitoring)
        scenario.finding("alerts firing: HiveMetastoreDatabaseDown, HiveMetastoreHighErrorRate")
    finally:
        server.start()
    assert {"health_database_up", "health_error_rate"} <= set(failed(down))
    assert not scenario.verified(down)
    wait_until(lambda: "HiveMetastoreDatabaseDown" not in api.alerts(), 30, "alert to clear")


@pytest.mark.destructive
@pytest.mark.negative_control
def test_service_down_alert_fires_and_clears(
    dr: DRSession,
    scenario: ScenarioRecorder,
    metastore_services: MetastoreRestoreTarget,
    monitoring: LocalMonitoring,
) -> None:
    """kill -9 of the metastore service: HiveMetastoreDown fires (up == 0) and clears
    when the service is back."""
    scenario.begin(
        "hms_full_restore",
        "metastore",
        "Metastore service killed: HiveMetastoreDown",
        f"{RUNBOOK_HMS} · Monitor Metastore Health",
        kind="negative-control",
    )
    api, platform = monitoring.api, metastore_services.platform
    name = metastore_services.metastore_service
    wait_until(lambda: bool(api.query('up{job="hive-metastore"} == 1')), 30, "first scrape")
    scenario.incident()
    platform.kill(name)
    try:
        wait_until(lambda: api.alerts().get("HiveMetastoreDown") == "firing", 30, "alert")
        down = check_health(api, dr.profile.monitoring)
        scenario.finding("alert firing: HiveMetastoreDown")
    finally:
        platform.scale(name, 1)
        platform.wait_ready(name, 30)
    assert "health_service_up" in failed(down)
    assert not scenario.verified(down)
    wait_until(lambda: "HiveMetastoreDown" not in api.alerts(), 30, "alert to clear")
