"""Restore testing of the real backups (``drtests restore-test``): would last night's
backups restore, and would the services run on them, within the RTO? Each component's
chosen recovery point is restored into a scratch server (never the source), its
application started there and tested, the copy compared with the source within the RPO;
the source is read and never written.

The controls (game day only: they write backups that lie) each break one thing a restore
test must name: a backup older than the RPO, one that lost a database's tables, a corrupt
newest backup, a backup HMS cannot serve, a DAG that no longer imports, a changed object
in an S3 archive.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drtests.airflow.deployment import SAMPLE_DAGS, AirflowDeployment, require_airflow
from drtests.environments import Environment
from drtests.errors import DRError, EnvironmentUnavailable
from drtests.fixtures.hostile_backups import altered_copy, delete_with_children, flip_byte_in_data
from drtests.fixtures.restore_test import (
    RUNBOOK_STEP,
    ArchiveSource,
    RestorePlan,
    RestoreSource,
    RestoreTestRun,
)
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.schema import SUPPORTED_VERSIONS
from drtests.mlflow.server import MlflowServer, require_mlflow
from drtests.mlflow.tracking import checking_client
from drtests.objectstore import delete_all_versions
from drtests.plugin import DRSession
from drtests.postgres import dump_database, table_fingerprints
from drtests.procedures.identity import (
    AIRFLOW_TABLES,
    MLFLOW_TABLES,
    alembic_identity,
    metastore_identity,
)
from drtests.procedures.journal import Journal
from drtests.restoretest.applications import (
    airflow_runs_on_copy,
    hms_serves_copy,
    metastore_checks,
    mlflow_serves_copy,
    seeded,
    sql_layout,
)
from drtests.restoretest.objects import archive_points, restore_sample
from drtests.restoretest.scratch import ScratchServer
from drtests.results import CheckResult, Finding, failed

# not part of the game day: restore testing is the nightly job beside it. The controls
# carry the marker too, and `drtests restore-test` leaves them out (they write backups)
pytestmark = [pytest.mark.restore_test]


@pytest.fixture
def new_run(
    scenario: ScenarioRecorder, restore_plan: RestorePlan, scratch: ScratchServer, tmp_path: Path
) -> Callable[[RestoreSource, str], RestoreTestRun]:
    def make(source: RestoreSource, component: str) -> RestoreTestRun:
        return RestoreTestRun(scenario, restore_plan, scratch, source, component, tmp_path)

    return make


@pytest.fixture
def unchanged_source(dr_environment: Environment) -> Iterator[Callable[[RestoreSource], None]]:
    """On an owned environment: the source's every table, byte for byte, after the test
    as before it (on a live one the recorders of the safety tests prove it)."""
    watched: list[tuple[RestoreSource, dict[str, Any]]] = []

    def watch(source: RestoreSource) -> None:
        if dr_environment.owned:
            with source.connect() as conn:
                watched.append((source, table_fingerprints(conn)))

    yield watch
    for source, before in watched:
        with source.connect() as conn:
            assert table_fingerprints(conn) == before, f"{source.target} changed"


# ------------------------------------------------------------------ metastore


def _hms_serves(
    dr: DRSession, scratch: ScratchServer, run: RestoreTestRun, workdir: Path
) -> CheckResult:
    """The real HMS (pyspark's jars) on the copy: what it serves. Hive 2.3's DataNucleus
    adds the columns it maps that a 3.x schema lacks, on the copy only, as it would on
    any database it is started on; rows it does not touch."""
    from drtests.metastore.service import HiveMetastoreService, find_hive_runtime

    result = CheckResult("hms_serves_restored_copy", "HMS serves the copy")
    try:
        runtime = find_hive_runtime()
    except EnvironmentUnavailable as exc:
        result.not_run = str(exc)
        return result
    assert run.copy is not None
    bucket = dr.profile.buckets.data[0]
    service = HiveMetastoreService(
        runtime,
        scratch.endpoint,
        run.copy.database,
        workdir / "hms",
        buckets=tuple(dr.profile.buckets.data),
        warehouse=f"s3a://{bucket}/warehouse",
    )
    with run.journal.step("Start HMS on the copy", RUNBOOK_STEP) as s:
        try:
            service.start(dr.profile.services.ready_timeout_seconds)
        except DRError as exc:
            service.stop()
            result.error = f"cannot run: HMS did not start on the copy: {exc}"
            return result
        s.detail = f"HMS 2.3 Thrift on port {service.port}, on the copy only"
    try:
        with run.journal.step("Read every table and partition through HMS", RUNBOOK_STEP) as s:
            with run.connect_copy() as conn:
                layout = sql_layout(conn)
            result = hms_serves_copy(service.host, service.port, layout)
            s.detail = "; ".join(f.detail for f in result.findings[-1:])
    finally:
        service.stop()
    return result


def _test_metastore_copy(
    dr: DRSession,
    env: Environment,
    scratch: ScratchServer,
    run: RestoreTestRun,
    workdir: Path,
    through_hms: bool = True,
) -> list[CheckResult]:
    assert run.copy is not None
    with run.journal.step("Run the metastore checks on the copy", RUNBOOK_STEP) as s:
        with run.connect_copy() as conn:
            allow_list = dr.profile.metastore.location_allow_list
            checks = metastore_checks(conn, allow_list, env.s3_primary.client())
        s.detail = f"{len(checks)} checks, {len(failed(checks))} failing"
    return [*checks, _hms_serves(dr, scratch, run, workdir)] if through_hms else checks


@pytest.mark.metastore
@pytest.mark.restore_component("metastore")
def test_metastore_backup_restores_and_serves(
    dr: DRSession,
    dr_environment: Environment,
    scratch: ScratchServer,
    metastore_source: RestoreSource,
    new_run: Callable[[RestoreSource, str], RestoreTestRun],
    unchanged_source: Callable[[RestoreSource], None],
    scenario: ScenarioRecorder,
    tmp_path: Path,
) -> None:
    """The chosen metastore backup restores on the scratch server, passes the checks, HMS
    serves every table and partition of it, and it holds what the source holds."""
    run = new_run(metastore_source, "metastore")
    run.begin("Metastore backup restores into scratch and HMS serves it")
    unchanged_source(metastore_source)
    try:
        if run.restore(metastore_identity(SUPPORTED_VERSIONS)) is not None:
            run.compare_with_source()
            run.results += _test_metastore_copy(dr, dr_environment, scratch, run, tmp_path)
        run.verify()
    finally:
        run.drop_copy()
    scenario.assert_objectives_met()


def _stale(source: RestoreSource, journal: Journal, workdir: Path) -> str:
    """The only backup in the window is three hours old; the RPO allows one."""
    catalog = source.catalog
    delete_all_versions(catalog.client, catalog.bucket, catalog.prefix)
    catalog.create(source.pg, source.database, datetime.now(UTC) - timedelta(hours=3))
    return "backup_within_rpo"


def _tables_lost(source: RestoreSource, journal: Journal, workdir: Path) -> str:
    def lose_a_database(conn: psycopg.Connection[Any]) -> None:
        db = conn.execute(
            'SELECT d."DB_ID" FROM "DBS" d JOIN "TBLS" t USING ("DB_ID") '
            'GROUP BY d."DB_ID" ORDER BY count(*) DESC LIMIT 1'
        ).fetchone()
        assert db is not None
        delete_with_children(conn, '"TBLS"', f'"DB_ID" = {int(db[0])}')

    _upload_altered(source, journal, workdir, lose_a_database)
    return "databases_match_source"


def _unservable(source: RestoreSource, journal: Journal, workdir: Path) -> str:
    def detach_storage(conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            'UPDATE "TBLS" SET "SD_ID" = NULL WHERE "TBL_ID" = '
            '(SELECT min("TBL_ID") FROM "TBLS" WHERE "TBL_TYPE" <> \'VIRTUAL_VIEW\')'
        )

    _upload_altered(source, journal, workdir, detach_storage)
    return "missing_storage_descriptors"


def _corrupt_newest(source: RestoreSource, journal: Journal, workdir: Path) -> str:
    good = workdir / "good.dump"
    dump_database(source.pg, source.database, good)
    corrupt = flip_byte_in_data(good, workdir / "corrupt.dump")
    source.catalog.upload(corrupt, source.database, datetime.now(UTC) - timedelta(minutes=1))
    return "recovery_point_restores"


def _upload_altered(
    source: RestoreSource,
    journal: Journal,
    workdir: Path,
    alter: Callable[[psycopg.Connection[Any]], None],
) -> None:
    good = workdir / "good.dump"
    dump_database(source.pg, source.database, good)
    bad = altered_copy(source.pg, source.database, good, alter, journal, workdir / "bad.dump")
    source.catalog.upload(bad, source.database, datetime.now(UTC) - timedelta(minutes=1))


METASTORE_LIES = {
    "stale-backup": _stale,
    "database-tables-lost": _tables_lost,
    "hms-cannot-serve-a-table": _unservable,
    "corrupt-newest-backup": _corrupt_newest,
}


@pytest.mark.metastore
@pytest.mark.restore_component("metastore")
@pytest.mark.negative_control
@pytest.mark.parametrize("lie", list(METASTORE_LIES))
def test_restore_test_names_a_bad_metastore_backup(
    lie: str,
    dr: DRSession,
    dr_environment: Environment,
    scratch: ScratchServer,
    metastore_source: RestoreSource,
    new_run: Callable[[RestoreSource, str], RestoreTestRun],
    scenario: ScenarioRecorder,
    tmp_path: Path,
) -> None:
    """Control: the newest backup is made to lie; the restore test must fail naming it."""
    if not dr_environment.owned:
        pytest.skip("the controls write backups: they run on an environment this run creates")
    run = new_run(metastore_source, "metastore")
    run.begin(f"Restore test of a metastore backup: {lie}", kind="negative-control")
    # the good backup the fixture took stays as the older fallback; the lie is newer
    expected = METASTORE_LIES[lie](metastore_source, run.journal, tmp_path)
    # HMS is started where it is what must notice; the good path proves it serves a copy
    through_hms = lie == "hms-cannot-serve-a-table"
    try:
        if run.restore(metastore_identity(SUPPORTED_VERSIONS)) is not None:
            run.compare_with_source()
            run.results += _test_metastore_copy(
                dr, dr_environment, scratch, run, tmp_path, through_hms
            )
        verified = run.verify()
    finally:
        run.drop_copy()
    assert not verified
    assert expected in failed(run.results), [(r.name, r.findings[:2]) for r in run.results]
    if lie == "hms-cannot-serve-a-table":
        hms = next(r for r in run.results if r.name == "hms_serves_restored_copy")
        assert hms.not_run or not hms.ok, "HMS served a table without storage descriptor"


# ------------------------------------------------------------------ Airflow


def _airflow_on_copy(
    dr: DRSession, scratch: ScratchServer, run: RestoreTestRun, dags: Path | None, home: Path
) -> list[CheckResult]:
    assert run.copy is not None
    no_dags = dags is None
    if dags is None:
        dags = home / "no-dags"
        dags.mkdir(parents=True)
    deployment = AirflowDeployment.create(home, scratch.endpoint.dsn(run.copy.database), dags)
    with run.journal.step("Run Airflow's checks on the copy", RUNBOOK_STEP) as s:
        results = airflow_runs_on_copy(deployment)
        s.detail = "; ".join(f.detail for r in results for f in r.findings if f.severity == "info")
    if no_dags:
        dagbag = next(r for r in results if r.name == "dagbag_imports")
        dagbag.findings.clear()
        dagbag.not_run = "the profile names no [airflow] dags_folder: DagBag() not tested"
    return results


@pytest.mark.airflow
@pytest.mark.restore_component("airflow")
@pytest.mark.xdist_group("airflow-2")
def test_airflow_backup_restores_and_runs(
    dr: DRSession,
    dr_environment: Environment,
    scratch: ScratchServer,
    airflow_source: RestoreSource,
    new_run: Callable[[RestoreSource, str], RestoreTestRun],
    unchanged_source: Callable[[RestoreSource], None],
    scenario: ScenarioRecorder,
    tmp_path: Path,
) -> None:
    """The chosen Airflow backup restores, ``airflow db check`` passes on it, it is at the
    installed Airflow's migration head and ``DagBag()`` loads the DAGs without errors."""
    try:
        require_airflow()
    except DRError as exc:
        pytest.skip(str(exc))
    run = new_run(airflow_source, "airflow")
    run.begin("Airflow backup restores into scratch and Airflow runs on it")
    unchanged_source(airflow_source)
    dags = dr.profile.airflow.dags_folder or (SAMPLE_DAGS if dr_environment.owned else None)
    try:
        if run.restore(alembic_identity("Airflow", AIRFLOW_TABLES, None)) is not None:
            run.compare_with_source()
            run.results += _airflow_on_copy(dr, scratch, run, dags, tmp_path / "airflow")
        run.verify()
    finally:
        run.drop_copy()
    scenario.assert_objectives_met()


@pytest.mark.airflow
@pytest.mark.restore_component("airflow")
@pytest.mark.negative_control
@pytest.mark.xdist_group("airflow-2")
def test_restore_test_names_a_dag_that_no_longer_imports(
    dr: DRSession,
    dr_environment: Environment,
    scratch: ScratchServer,
    airflow_source: RestoreSource,
    new_run: Callable[[RestoreSource, str], RestoreTestRun],
    tmp_path: Path,
) -> None:
    """Control: the DAG folder holds a DAG that fails to import; DagBag must name it."""
    if not dr_environment.owned:
        pytest.skip("the control changes the DAG folder: it runs on an environment it owns")
    run = new_run(airflow_source, "airflow")
    run.begin("Restore test of Airflow with a DAG import error", kind="negative-control")
    dags = tmp_path / "dags"
    dags.mkdir()
    for path in SAMPLE_DAGS.glob("*.py"):
        (dags / path.name).write_bytes(path.read_bytes())
    (dags / "broken_dag.py").write_text("from airflow.sdk import DAG\nimport no_such_module\n")
    try:
        if run.restore(alembic_identity("Airflow", AIRFLOW_TABLES, None)) is not None:
            run.results += _airflow_on_copy(dr, scratch, run, dags, tmp_path / "airflow")
        verified = run.verify()
    finally:
        run.drop_copy()
    assert not verified
    dagbag = next(r for r in run.results if r.name == "dagbag_imports")
    assert [f.subject for f in dagbag.findings if f.severity == "error"] == ["broken_dag.py"]


# ------------------------------------------------------------------ MLflow


@pytest.mark.mlflow
@pytest.mark.restore_component("mlflow")
@pytest.mark.xdist_group("mlflow")
def test_mlflow_backup_restores_and_serves(
    dr: DRSession,
    dr_environment: Environment,
    scratch: ScratchServer,
    restore_plan: RestorePlan,
    mlflow_source: RestoreSource,
    new_run: Callable[[RestoreSource, str], RestoreTestRun],
    unchanged_source: Callable[[RestoreSource], None],
    scenario: ScenarioRecorder,
    tmp_path: Path,
) -> None:
    """The chosen MLflow backup restores; a tracking server on it lists experiments, runs
    and models, and serves sampled artifacts as the artifact store holds them."""
    try:
        require_mlflow()
    except DRError as exc:
        pytest.skip(str(exc))
    run = new_run(mlflow_source, "mlflow")
    run.begin("MLflow backup restores into scratch and a tracking server serves it")
    unchanged_source(mlflow_source)
    settings = dr.profile.mlflow
    try:
        if run.restore(alembic_identity("MLflow", MLFLOW_TABLES, None)) is not None:
            run.compare_with_source()
            assert run.copy is not None
            server = MlflowServer(
                scratch.endpoint.dsn(run.copy.database),
                dr_environment.s3_primary,
                f"s3://{settings.artifact_bucket}/{settings.artifact_prefix.rstrip('/')}",
            )
            process = server.process("mlflow-restore-test", tmp_path)
            try:
                with run.journal.step("Start MLflow on the copy", RUNBOOK_STEP) as s:
                    process.start()
                    process.wait_ready(server.ready, dr.profile.services.ready_timeout_seconds)
                    s.detail = f"tracking server on {server.url}"
                with run.journal.step("List and download through MLflow", RUNBOOK_STEP) as s:
                    results = mlflow_serves_copy(
                        checking_client(server.url),
                        dr_environment.s3_primary.client(),
                        (settings.artifact_bucket, settings.artifact_prefix),
                        restore_plan.settings.artifact_sample,
                        seeded(restore_plan.selection.seed, "mlflow"),
                    )
                    s.detail = "; ".join(
                        f.detail for r in results for f in r.findings if f.severity == "info"
                    )
            finally:
                process.stop()
            run.results += results
        run.verify()
    finally:
        run.drop_copy()
    scenario.assert_objectives_met()


# ------------------------------------------------------------------ S3


def _sample(
    run: RestoreTestRun, archives: ArchiveSource, plan: RestorePlan, size: int, workdir: Path
) -> bool:
    client = archives.s3.client()
    with run.journal.step("Select recovery point", RUNBOOK_STEP) as s:
        archived = archive_points(client, archives.bucket, archives.prefix)
        points = plan.selection.order(archived, run.now, "s3")
        s.detail = (
            f"{len(archived)} archive{'' if len(archived) == 1 else 's'} in "
            f"s3://{archives.bucket}/{archives.prefix}; "
            f"{plan.selection.describe()}: {points[0].uri if points else 'none'}"
        )
    restored = CheckResult("recovery_point_restores", "an archive within the window")
    run.results.append(restored)
    if not points:
        where = f"s3://{archives.bucket}/{archives.prefix}"
        restored.findings.append(
            Finding(restored.name, "error", where, "no archive within the window")
        )
        return run.verify()
    run.scenario.incident()
    scratch = workdir / "s3-scratch"
    scratch.mkdir()
    with run.journal.step("Restore a sample of the archive", RUNBOOK_STEP) as s:
        rng = seeded(plan.selection.seed, "s3")
        outcome = restore_sample(client, points[0], size, rng, scratch)
        s.detail = (
            f"{points[0].uri}: {outcome.sampled} of {outcome.objects} objects, "
            f"{outcome.bytes_restored} bytes"
        )
    run.scenario.restored(points[0].uri)
    age = (run.now - points[0].taken_at).total_seconds()
    run.scenario.data_age(age, f"archive taken {timedelta(seconds=round(age))} ago")
    run.results.append(outcome.result)
    return run.verify()


@pytest.mark.objectstore
@pytest.mark.restore_component("s3")
def test_s3_archive_sample_restores_as_recorded(
    restore_plan: RestorePlan,
    archive_source: ArchiveSource,
    scenario: ScenarioRecorder,
    scratch: ScratchServer,
    tmp_path: Path,
) -> None:
    """A seeded random sample of the newest archive's objects, restored into a scratch
    folder, equals the manifest byte for byte."""
    run = RestoreTestRun(scenario, restore_plan, scratch, None, "s3", tmp_path)
    run.begin("S3 archive sample restores as its manifest records")
    _sample(run, archive_source, restore_plan, restore_plan.settings.s3_sample, tmp_path)
    scenario.assert_objectives_met()


@pytest.mark.objectstore
@pytest.mark.restore_component("s3")
@pytest.mark.negative_control
def test_restore_test_names_a_changed_archived_object(
    restore_plan: RestorePlan,
    dr_environment: Environment,
    archive_source: ArchiveSource,
    scenario: ScenarioRecorder,
    scratch: ScratchServer,
    tmp_path: Path,
) -> None:
    """Control: one object in the archive differs from its manifest; the sample (every
    object here) must name it."""
    if not dr_environment.owned:
        pytest.skip("the control rewrites an archive: it runs on an environment it owns")
    run = RestoreTestRun(scenario, restore_plan, scratch, None, "s3", tmp_path)
    run.begin("Restore test of an S3 archive with a changed object", kind="negative-control")
    client = archive_source.s3.client()
    point = archive_points(client, archive_source.bucket, archive_source.prefix)[0]
    changed = _change_one_member(client, point.bucket, point.key)
    assert not _sample(run, archive_source, restore_plan, 10**6, tmp_path)
    sample = next(r for r in run.results if r.name == "s3_sample_matches_manifest")
    named = [f.subject for f in sample.findings if f.severity == "error"]
    assert changed in named, named


def _change_one_member(client: Any, bucket: str, key: str) -> str:
    """The archive rewritten with one member's bytes changed (same size), its manifest
    kept: what bit rot or a tampered copy looks like."""
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    out = io.BytesIO()
    changed = ""
    with (
        tarfile.open(fileobj=io.BytesIO(original), mode="r:gz") as src,
        tarfile.open(fileobj=out, mode="w:gz") as dst,
    ):
        for member in src:
            handle = src.extractfile(member)
            data = handle.read() if handle is not None else b""
            if not changed and data:
                changed = member.name
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            dst.addfile(member, io.BytesIO(data))
    client.put_object(Bucket=bucket, Key=key, Body=out.getvalue())
    return changed
