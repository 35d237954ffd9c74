"""Airflow after a restore, checked as the runbook's §3 step 4-5 and the Post-Restore
Validation ask: DAGs load, the database answers and has the installed Airflow's schema,
DAG runs and task instances are those of the baseline, the API server is accessible.
Each check names what differs (a DAG, a run, a table), not only that something does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from drtests.airflow.api import AirflowAPI
from drtests.airflow.deployment import AirflowInstallation, ProbeResult
from drtests.errors import DRError
from drtests.metastore.changes import ChangeLog
from drtests.postgres import public_tables
from drtests.results import CheckResult, Finding, run_check
from drtests.schema_fingerprint import (
    SCHEMA_CHECK,
    SchemaFingerprint,
    schema_differences,
    schema_fingerprint,
)

DAG_RUNS = (
    "SELECT dag_id, run_id, state, run_type, coalesce(logical_date::text, ''), "
    "coalesce(end_date::text, '') FROM dag_run"
)
TASK_INSTANCES = (
    "SELECT dag_id, run_id, task_id, map_index::text, coalesce(state, ''), "
    "try_number::text FROM task_instance"
)
# a run's last change: when it ended, or started, or was queued
RUN_CHANGES = (
    "SELECT dag_id || '/' || run_id, "
    "extract(epoch FROM coalesce(end_date, start_date, queued_at, run_after))::bigint "
    "FROM dag_run"
)

Rows = frozenset[tuple[str, ...]]


@dataclass(frozen=True)
class AirflowBaseline:
    dag_ids: tuple[str, ...]
    serialized_dags: tuple[str, ...]
    tables: tuple[str, ...]
    dag_runs: Rows
    task_instances: Rows
    schema: SchemaFingerprint
    #: what Airflow's own interpreter said when the baseline was taken
    probe: ProbeResult


def _rows(conn: psycopg.Connection[Any], query: str) -> Rows:
    return frozenset(tuple(str(v) for v in row) for row in conn.execute(query).fetchall())


def _tables(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    return tuple(sorted(public_tables(conn)))


def _serialized(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    rows = conn.execute("SELECT dag_id FROM dag WHERE NOT is_stale").fetchall()
    return tuple(sorted(r[0] for r in rows))


def take_baseline(deployment: AirflowInstallation) -> AirflowBaseline:
    probe = deployment.probe()
    with psycopg.connect(deployment.dsn, autocommit=True) as conn:
        return AirflowBaseline(
            dag_ids=probe.dag_ids,
            serialized_dags=_serialized(conn),
            tables=_tables(conn),
            dag_runs=_rows(conn, DAG_RUNS),
            task_instances=_rows(conn, TASK_INSTANCES),
            schema=schema_fingerprint(conn),
            probe=probe,
        )


def run_changes(dsn: str) -> ChangeLog:
    """Committed DAG runs by dag/run id with the time of their last change, for the RPO."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(RUN_CHANGES).fetchall()
    return ChangeLog({str(r[0]): int(r[1]) for r in rows})


def _check(name: str, description: str, run: Callable[[], Iterable[Finding]]) -> CheckResult:
    return run_check(name, description, run, (psycopg.Error, DRError))


def _row_findings(check: str, what: str, expected: Rows, actual: Rows) -> list[Finding]:
    """Baseline rows missing or changed are errors; rows added since (runs of the restarted
    scheduler) are reported for information."""
    keys = {row[:3]: row for row in actual}
    findings = []
    for row in sorted(expected - actual):
        now = keys.get(row[:3])
        detail = "missing" if now is None else f"changed: {row[3:]} → {now[3:]}"
        findings.append(Finding(check, "error", f"{what} {'/'.join(row[:3])}", detail))
    extra = len(actual - expected) - sum(1 for row in expected - actual if row[:3] in keys)
    if extra > 0:
        findings.append(Finding(check, "info", what, f"{extra} rows added since the baseline"))
    return findings


def check_airflow(
    deployment: AirflowInstallation,
    baseline: AirflowBaseline,
    *,
    api: bool,
    probe: ProbeResult | None = None,
) -> list[CheckResult]:
    """Every check of the restored Airflow; ``api`` when the API server should be running.
    ``probe``: Airflow's own answer when it is already known for this state (the
    baseline's, checked at once), otherwise Airflow's interpreter is asked now."""
    probe_error = ""
    if probe is None:
        try:
            probe = deployment.probe()
        except DRError as exc:
            probe_error = str(exc)

    def conn() -> psycopg.Connection[Any]:
        return psycopg.connect(deployment.dsn, autocommit=True, connect_timeout=5)

    def db_check() -> list[Finding]:
        if probe is None:
            raise DRError(probe_error)
        if probe.db_error:
            raise DRError(f"airflow db check: {probe.db_error}")
        return []

    def schema_current() -> list[Finding]:
        if probe is None:
            raise DRError(probe_error)
        with conn() as c:
            row = c.execute("SELECT version_num FROM alembic_version").fetchone()
        in_db = row[0] if row else None
        if in_db in probe.heads:
            return []
        return [
            Finding(
                "airflow_schema_current",
                "error",
                "alembic_version",
                f"database at revision {in_db}, Airflow {probe.version} expects "
                f"{', '.join(probe.heads)}: a backup of another Airflow version",
            )
        ]

    def tables_present() -> list[Finding]:
        with conn() as c:
            present = set(_tables(c))
        return [
            Finding("airflow_tables_present", "error", f"table {t}", "missing")
            for t in baseline.tables
            if t not in present
        ]

    def dags_load() -> list[Finding]:
        if probe is None:
            raise DRError(probe_error)
        found = [
            Finding("airflow_dags_load", "error", f"file {path}", error.strip().splitlines()[-1])
            for path, error in probe.import_errors.items()
        ]
        found += [
            Finding("airflow_dags_load", "error", f"DAG {d}", "not loaded")
            for d in sorted(set(baseline.dag_ids) - set(probe.dag_ids))
        ]
        return found

    def dags_serialized() -> list[Finding]:
        with conn() as c:
            present = set(_serialized(c))
        return [
            Finding("airflow_dags_serialized", "error", f"DAG {d}", "not in the dag table")
            for d in baseline.serialized_dags
            if d not in present
        ]

    def dag_runs() -> list[Finding]:
        with conn() as c:
            actual = _rows(c, DAG_RUNS)
        return _row_findings("airflow_dag_runs_match", "dag_run", baseline.dag_runs, actual)

    def task_instances() -> list[Finding]:
        with conn() as c:
            actual = _rows(c, TASK_INSTANCES)
        return _row_findings(
            "airflow_task_instances_match", "task_instance", baseline.task_instances, actual
        )

    def schema_matches() -> list[Finding]:
        with conn() as c:
            return schema_differences(baseline.schema, schema_fingerprint(c))

    results = [
        _check("airflow_db_check", "airflow db check: the metadata database answers", db_check),
        _check(
            "airflow_schema_current",
            "alembic_version is the installed Airflow's migration head",
            schema_current,
        ),
        _check("airflow_tables_present", "every table of the baseline exists", tables_present),
        _check(
            SCHEMA_CHECK,
            "tables, columns, constraints, indexes, triggers and the rest as in the baseline",
            schema_matches,
        ),
        _check("airflow_dags_load", "DagBag(): no import errors, the baseline's DAGs", dags_load),
        _check("airflow_dags_serialized", "the baseline's DAGs are serialized", dags_serialized),
        _check("airflow_dag_runs_match", "dag_run rows equal the baseline", dag_runs),
        _check(
            "airflow_task_instances_match",
            "task_instance rows equal the baseline",
            task_instances,
        ),
    ]
    if api:
        results.append(
            _check(
                "airflow_api_accessible",
                "the API server reports every component healthy and lists the DAGs",
                lambda: api_findings(deployment.api_url, baseline.dag_ids),
            )
        )
    return results


def api_findings(api_url: str, dag_ids: Iterable[str]) -> list[Finding]:
    """The runbook's "Verify Airflow is accessible", through the REST API."""
    check = "airflow_api_accessible"
    api = AirflowAPI(api_url)
    findings = [
        Finding(check, "error", component, f"status {status}")
        for component, status in api.unhealthy().items()
    ]
    listed = api.dag_ids()
    findings += [
        Finding(check, "error", f"DAG {d}", "not listed by the API")
        for d in dag_ids
        if d not in listed
    ]
    return findings
