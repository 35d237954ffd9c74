"""The application tests of a restored copy, run against the copy alone (SureBackup's
"application group" in an isolated lab): the metastore served by the real HMS and its
consistency checks; Airflow's ``db check``, migration head and ``DagBag()``; an MLflow
tracking server listing what the copy holds and serving its artifacts. Each returns named
check results whose findings say what and why."""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from drtests.errors import DRError
from drtests.metastore.checks import CHECKS, CheckContext, run_checks
from drtests.results import CheckResult, Finding

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from drtests.airflow.deployment import AirflowDeployment
    from drtests.mlflow.tracking import CheckingClient

#: the consistency checks a restored copy must pass alone. Not those that compare with a
#: baseline (the source is compared within the RPO instead), nor s3_paths_registered:
#: directories written since the backup are the newer data the backup cannot know
COPY_CHECKS = tuple(
    c
    for c in CHECKS
    if c.name not in ("table_count_per_database", "objects_match_baseline", "s3_paths_registered")
)


def _finding(result: CheckResult, subject: str, detail: str) -> None:
    result.findings.append(Finding(result.name, "error", subject, detail))


def _note(result: CheckResult, subject: str, detail: str) -> None:
    """What the check saw, for the evidence (not a failure)."""
    result.findings.append(Finding(result.name, "info", subject, detail))


# ------------------------------------------------------------------ metastore


def metastore_checks(
    conn: psycopg.Connection[Any], allow_list: tuple[str, ...], s3: S3Client | None
) -> list[CheckResult]:
    """The runbook's consistency checks on the copy; its S3 locations read from the live
    data buckets (listing and HEAD only)."""
    return run_checks(CheckContext(conn, allow_list, None, s3, None), COPY_CHECKS)


def sql_layout(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    """Database → table → partitions, as the copy's rows hold them."""
    rows = conn.execute(
        'SELECT d."NAME", t."TBL_NAME", count(p."PART_ID") FROM "DBS" d '
        'JOIN "TBLS" t ON t."DB_ID" = d."DB_ID" '
        'LEFT JOIN "PARTITIONS" p ON p."TBL_ID" = t."TBL_ID" '
        'GROUP BY d."NAME", t."TBL_NAME"'
    ).fetchall()
    layout: dict[str, dict[str, int]] = {}
    for db, table, partitions in rows:
        layout.setdefault(str(db).lower(), {})[str(table).lower()] = int(partitions)
    for (db,) in conn.execute('SELECT "NAME" FROM "DBS"').fetchall():
        layout.setdefault(str(db).lower(), {})
    return layout


def hms_serves_copy(host: str, port: int, layout: dict[str, dict[str, int]]) -> CheckResult:
    """Every database, table (with its columns) and partition of the copy, asked of the real
    HMS one table at a time: a table the service cannot serve is named with its error."""
    from thrift.Thrift import TException

    from drtests.metastore.thrift import hms_client

    result = CheckResult(
        "hms_serves_restored_copy", "HMS serves every database, table and partition of the copy"
    )
    served_tables = served_partitions = 0
    try:
        with hms_client(host, port) as client:
            served_dbs = {d.lower() for d in client.get_all_databases()}
            for db in sorted(layout):
                if db not in served_dbs:
                    _finding(result, db, "database not served")
                    continue
                names = {t.lower() for t in client.get_all_tables(db)}
                for table, partitions in sorted(layout[db].items()):
                    subject = f"{db}.{table}"
                    if table not in names:
                        _finding(result, subject, "table not served")
                        continue
                    try:
                        served = client.get_table(db, table)
                        got = len(client.get_partitions(db, table, -1)) if partitions else 0
                    except TException as exc:
                        message = getattr(exc, "message", None) or type(exc).__name__
                        _finding(result, subject, f"HMS cannot serve it: {message}")
                        continue
                    served_tables += 1
                    served_partitions += got
                    columns = served.sd.cols if served.sd else []
                    if not columns and served.tableType != "VIRTUAL_VIEW":
                        _finding(result, subject, "served without columns")
                    if got != partitions:
                        _finding(result, subject, f"{got} of {partitions} partitions served")
    except (DRError, TException, OSError) as exc:
        result.error = f"cannot run: {exc}"
        return result
    _note(result, "copy", f"{served_tables} tables and {served_partitions} partitions served")
    return result


# ------------------------------------------------------------------ Airflow


def airflow_runs_on_copy(deployment: AirflowDeployment) -> list[CheckResult]:
    """``airflow db check``, the copy's migration against the installed Airflow's head, and
    the runbook's ``DagBag()`` on the profile's DAG folder, from Airflow's own interpreter."""
    db_check = CheckResult("airflow_db_check", "airflow db check passes on the copy")
    head = CheckResult("airflow_migration_head", "the copy is at the installed Airflow's head")
    dagbag = CheckResult("dagbag_imports", "DagBag() loads every DAG without import errors")
    results = [db_check, head, dagbag]
    try:
        probe = deployment.probe()
    except DRError as exc:
        for result in results:
            result.error = f"cannot run: {exc}"
        return results
    if probe.db_error:
        _finding(db_check, "airflow db check", probe.db_error)
    try:
        with psycopg.connect(deployment.dsn, connect_timeout=5) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            dags, runs = conn.execute(
                "SELECT (SELECT count(*) FROM dag), (SELECT count(*) FROM dag_run)"
            ).fetchone() or (0, 0)
    except psycopg.Error as exc:
        head.error = f"cannot run: {str(exc).strip().splitlines()[0]}"
        return results
    revision = str(row[0]) if row else "(none)"
    if revision not in probe.heads:
        _finding(
            head, revision, f"the installed Airflow {probe.version} is at {', '.join(probe.heads)}"
        )
    counts = f"{dags} DAGs, {runs} DAG runs"
    _note(head, "copy", f"Airflow {probe.version}, migration {revision}; {counts}")
    for path, error in sorted(probe.import_errors.items()):
        _finding(dagbag, Path(path).name, (error.strip().splitlines() or ["import error"])[-1])
    _note(dagbag, "copy", f"{len(probe.dag_ids)} DAGs loaded")
    return results


# ------------------------------------------------------------------ MLflow


def mlflow_serves_copy(
    tracking: CheckingClient,
    artifacts_s3: S3Client,
    artifact_root: tuple[str, str],
    sample: int,
    rng: random.Random,
) -> list[CheckResult]:
    """Experiments, runs and registered models listed by a tracking server on the copy;
    a sample of artifacts downloaded through it and hashed against the bytes in the
    artifact store (read directly, read-only)."""
    from mlflow.entities import ViewType

    listing = CheckResult("mlflow_lists_copy", "experiments, runs and models listed")
    served = CheckResult("mlflow_artifacts_served", "sampled artifacts served as stored")
    try:
        experiments = tracking.search_experiments(view_type=ViewType.ALL)
        ids = [e.experiment_id for e in experiments]
        runs = tracking.search_runs(ids, run_view_type=ViewType.ALL) if ids else []
        models = tracking.search_registered_models()
    except Exception as exc:  # the client's errors are its own classes; each one a finding
        listing.error = f"cannot run: {_one_line(exc)}"
        served.error = listing.error
        return [listing, served]
    counts = f"{len(experiments)} experiments, {len(runs)} runs, {len(models)} models"
    _note(listing, "copy", counts)
    paths: list[tuple[Any, str]] = []
    for run in runs:
        try:
            paths += [(run, p) for p in _artifact_paths(tracking, run.info.run_id)]
        except Exception as exc:
            _finding(served, run.info.run_id, f"artifacts not listed: {_one_line(exc)}")
    chosen = rng.sample(paths, min(sample, len(paths)))
    bucket, prefix = artifact_root
    with tempfile.TemporaryDirectory(prefix="drtests-artifacts-") as tmp:
        for run, path in chosen:
            subject = f"{run.info.run_id}/{path}"
            try:
                local = tracking.download_artifacts(run.info.run_id, path, tmp)
                got = hashlib.sha256(Path(local).read_bytes()).hexdigest()
            except Exception as exc:
                _finding(served, subject, f"not served: {_one_line(exc)}")
                continue
            key = _artifact_key(prefix, run.info.artifact_uri, path)
            try:
                body = artifacts_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                _finding(served, subject, f"s3://{bucket}/{key} unreadable: {_one_line(exc)}")
                continue
            if hashlib.sha256(body).hexdigest() != got:
                _finding(served, subject, f"served bytes differ from s3://{bucket}/{key}")
    _note(served, "copy", f"{len(chosen)} of {len(paths)} artifacts sampled")
    return [listing, served]


def _artifact_paths(tracking: Any, run_id: str, path: str | None = None) -> list[str]:
    paths: list[str] = []
    for item in tracking.list_artifacts(run_id, path):
        paths += _artifact_paths(tracking, run_id, item.path) if item.is_dir else [item.path]
    return paths


def _artifact_key(prefix: str, artifact_uri: str, path: str) -> str:
    """``mlflow-artifacts:/<exp>/<run>/artifacts`` → ``<prefix><exp>/<run>/artifacts/<path>``
    (the server's proxied root); an ``s3://bucket/key`` URI gives its key."""
    if artifact_uri.startswith("s3://"):
        rest = artifact_uri.split("://", 1)[1].split("/", 1)[1] if "/" in artifact_uri[5:] else ""
        return f"{rest.rstrip('/')}/{path}"
    relative = artifact_uri.split(":", 1)[1].lstrip("/")
    return f"{prefix}{relative.rstrip('/')}/{path}"


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def seeded(seed: int, component: str) -> random.Random:
    return random.Random(f"{seed}:{component}:sample")
