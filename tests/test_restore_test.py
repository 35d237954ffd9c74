"""Restore testing: the choice of recovery point, the profile's rails around the scratch
server, the scheduler's exit codes, and the promise that matters most — a full
``drtests restore-test`` against a live-profiled platform with a recorder in front of every
source sends not one write to any of them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtests.airflow.deployment import SAMPLE_DAGS
from drtests.backups import BackupCatalog
from drtests.config import load_profile, window_seconds
from drtests.environments import Environment
from drtests.errors import ProfileError
from drtests.fixtures.airflow import AirflowUnderTest
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.mlflow import MlflowUnderTest
from drtests.objectstore.archive import archive_key_for, create_archive
from drtests.restoretest.exitcode import exit_code
from drtests.restoretest.selection import Selection
from fixtures.recorder import recording_proxy, statement_log

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Point:
    taken_at: datetime


POINTS = [Point(NOW - timedelta(hours=h)) for h in (1, 25, 49, 73, 200)]


def test_latest_takes_the_newest_in_the_window_and_keeps_the_older_as_fallbacks() -> None:
    order = Selection("latest", timedelta(days=3), 1).order(POINTS, NOW, "metastore")
    assert order == POINTS[:3]
    assert Selection("latest", timedelta(minutes=30), 1).order(POINTS, NOW, "metastore") == []


def test_random_is_repeatable_by_its_seed_and_independent_per_component() -> None:
    window = timedelta(days=7)
    choices = {
        seed: Selection("random", window, seed).order(POINTS, NOW, "airflow")[0]
        for seed in range(40)
    }
    assert len(set(choices.values())) > 1, "a random choice that never varies"
    again = Selection("random", window, 7).order(POINTS, NOW, "airflow")
    assert again == Selection("random", window, 7).order(POINTS, NOW, "airflow")
    assert all(p.taken_at < again[0].taken_at for p in again[1:])
    assert POINTS[4] not in again  # outside the window


def test_windows_are_read_and_bad_ones_named() -> None:
    assert window_seconds("36h") == 36 * 3600 and window_seconds("2w") == 14 * 86400
    for bad in ("7", "0d", "seven days", "-1d"):
        with pytest.raises(ValueError, match="not a window"):
            window_seconds(bad)
    with pytest.raises(ValueError, match="ten years"):
        window_seconds("100000000d")


def test_a_scratch_server_that_is_a_source_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "prod.toml"
    profile.write_text(
        'environment = "live"\n[postgres.metastore]\n'
        'dsn = "postgresql://hive:pw@db.prod:5432/metastore"\n[s3.primary]\n'
        '[restore_test]\nscratch_dsn = "postgresql://hive:pw@db.prod:5432/postgres"\n'
    )
    with pytest.raises(ProfileError, match=r"scratch_dsn is the server of \[postgres\.metastore\]"):
        load_profile(profile)
    # the same server however the DSNs spell it
    for source, scratch in (
        ("127.0.0.1", "localhost"),
        ("localhost", "[::1]"),
        ("DB.prod.", "db.prod"),
    ):
        profile.write_text(
            'environment = "live"\n[postgres.metastore]\n'
            f'dsn = "postgresql://hive:pw@{source}/metastore"\n[s3.primary]\n'
            f'[restore_test]\nscratch_dsn = "postgres://hive:pw@{scratch}:5432/postgres"\n'
        )
        with pytest.raises(ProfileError, match="scratch_dsn is the server of"):
            load_profile(profile)
    profile.write_text(profile.read_text().replace("db.prod:5432/postgres", "scratch:5432/x"))
    scratch = load_profile(profile).restore_test.scratch_dsn
    assert scratch is not None and "pw" in load_profile(profile).secrets()


def _junit(tmp_path: Path, *cases: str) -> Path:
    """A JUnit report of test cases: "pass", "fail", "error", "skip" or "down" (failed
    because it could not run)."""
    body = {
        "pass": "",
        "fail": "<failure/>",
        "error": "<error/>",
        "skip": "<skipped/>",
        "down": '<properties><property name="restore_test_could_not_run" value="x"/>'
        "</properties><failure/>",
    }
    path = tmp_path / "junit.xml"
    path.write_text(
        "<testsuites><testsuite>"
        + "".join(f"<testcase>{body[c]}</testcase>" for c in cases)
        + "</testsuite></testsuites>"
    )
    return path


def test_exit_codes_a_scheduler_understands(tmp_path: Path) -> None:
    assert exit_code(0, _junit(tmp_path, "pass", "pass", "skip")) == (0, "2 restore tests passed")
    assert exit_code(1, _junit(tmp_path, "fail", "error", "skip", "skip")) == (
        1,
        "1 of 2 restore tests found a problem",
    )
    assert exit_code(1, _junit(tmp_path, "error", "pass"))[0] == 2
    assert exit_code(1, _junit(tmp_path, "down", "pass")) == (
        2,
        "1 of 2 restore tests could not run",
    )
    assert exit_code(0, _junit(tmp_path, "skip", "skip"))[0] == 2
    assert exit_code(4, _junit(tmp_path))[0] == 2
    assert exit_code(0, tmp_path / "missing.xml")[0] == 2


def _run(
    *args: str, cwd: Path = ROOT, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "drtests.cli", "restore-test", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def test_an_unusable_profile_or_window_could_not_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[restore_test]\nwindow = 'a week'\n")
    done = _run("--profile", str(broken))
    assert done.returncode == 2 and "restore_test.window" in done.stderr, done.stderr
    done = _run("--window", "soon")
    assert done.returncode == 2 and "--window" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_full_restore_test_writes_nothing_to_any_source(
    dr_environment: Environment,
    metastore: MetastoreUnderTest,
    airflow: AirflowUnderTest,
    mlflow: MlflowUnderTest,
    tmp_path: Path,
) -> None:
    """Every component, against live-profiled sources: PostgreSQL's statement log and a
    recording proxy in front of S3 (which the MLflow server on the copy reads through too)
    see reads only; the backups restore on a scratch server the run owns; exit code 0."""
    server = dr_environment.postgres_server
    if server is None:
        pytest.skip("needs a PostgreSQL server this run owns (its statement log)")
    pg, s3 = dr_environment.postgres, dr_environment.s3_primary
    assert s3.endpoint_url is not None
    taken = datetime.now(UTC) - timedelta(minutes=10)
    for database, prefix, name in (
        (metastore.target.database, "hive-metastore/", "hive-metastore"),
        (airflow.target.database, "airflow/", "airflow"),
        (mlflow.target.database, "mlflow/", "mlflow"),
    ):
        BackupCatalog(s3, "spark-backups", f"rt-{prefix}", name).create(pg, database, taken)
    client = s3.client()
    archive = archive_key_for("rt-archives/", "spark-data", taken)
    create_archive(client, "spark-data", "warehouse/", "spark-backups", archive)
    (tmp_path / "home").mkdir()
    with recording_proxy(s3.endpoint_url) as proxy:
        profile = tmp_path / "prod.toml"
        profile.write_text(
            f'name = "prod"\nenvironment = "live"\nstate_dir = "{tmp_path / "state"}"\n'
            f'[postgres.metastore]\ndsn = "{pg.dsn(metastore.target.database)}"\n'
            f'[postgres.airflow]\ndsn = "{pg.dsn(airflow.target.database)}"\n'
            f'[postgres.mlflow]\ndsn = "{pg.dsn(mlflow.target.database)}"\n'
            f'[s3.primary]\nendpoint_url = "{proxy.url}"\n'
            f'access_key_id = "{s3.access_key_id}"\nsecret_access_key = "{s3.secret_access_key}"\n'
            "[kubernetes]\nenabled = false\n"
            '[metastore]\nbackup_prefix = "rt-hive-metastore/"\n'
            f'[airflow]\nbackup_prefix = "rt-airflow/"\ndags_folder = "{SAMPLE_DAGS}"\n'
            '[mlflow]\nbackup_prefix = "rt-mlflow/"\n'
            '[objectstore]\narchive_prefix = "rt-archives/"\n'
            "[safety]\nproduction = true\n"
        )
        with statement_log(pg, server.base_dir / "server.log") as log:
            done = _run(
                "--profile",
                str(profile),
                "--report-dir",
                str(tmp_path / "reports"),
                home=tmp_path / "home",
            )
    output = done.stdout + done.stderr
    (tmp_path / "restore-test.out").write_text(output)
    assert "Traceback" not in output
    assert done.returncode == 0, output[-4000:]
    assert "exit 0: 4 restore tests passed" in output
    assert log.statements == [], log.statements[:5]
    assert proxy.writes() == [], proxy.writes()[:5]
    assert len(proxy.requests) > 10, "the run never read the sources through the recorder"
    assert s3.secret_access_key not in output and pg.password not in output


def test_a_killed_restore_test_leaves_its_scratch_database_to_the_next_run(
    dr_environment: Environment, tmp_path: Path
) -> None:
    """A scratch database on the profile's scratch server is ledgered before it exists;
    the next run drops it, without --dr-allow-destructive (the server is scratch) and
    leaves every other database of that server alone."""
    from drtests.config import PostgresTarget, Profile, RestoreTestSettings
    from drtests.faults import DatabaseTarget, WorkDatabase
    from drtests.ledger import FaultLedger
    from drtests.postgres import create_database, database_exists, drop_database
    from drtests.recovery import revert_leftovers
    from drtests.restoretest.restore import LEDGER_COMPONENT
    from drtests.safety import SafetyRails

    pg = dr_environment.postgres
    live, staged = "drtests_rt_0a0a0a_metastore", "drtests_rt_0a0a0a_metastore__restoring"
    target = DatabaseTarget(pg, live, "live", tmp_path, LEDGER_COMPONENT)
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    work = WorkDatabase(staged)
    fault_id = ledger.begin(work.kind, work.describe(), target.describe(), work.params())
    ledger.captured(fault_id, work.capture(target))
    create_database(pg, staged)
    create_database(pg, "not_ours")
    try:
        profile = Profile(
            name="prod",
            environment="live",
            postgres={"metastore": PostgresTarget(dsn="postgresql://h:pw@db.prod:5432/m")},  # type: ignore[arg-type]
            restore_test=RestoreTestSettings(scratch_dsn=pg.dsn("postgres")),  # type: ignore[arg-type]
            state_dir=tmp_path,
        )
        lines = revert_leftovers(ledger, profile, SafetyRails(profile))
        assert "reverted" in lines[0], lines
        assert not database_exists(pg, staged) and database_exists(pg, "not_ours")
        assert not ledger.pending()
    finally:
        drop_database(pg, staged)
        drop_database(pg, "not_ours")


def test_an_unreachable_source_is_a_run_that_could_not_run(
    dr_environment: Environment, metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    """A backup that restores, then a source that does not answer the comparison: exit 2
    (could not run), not 1 (a bad backup), in one line per failure, no traceback."""
    pg, s3 = dr_environment.postgres, dr_environment.s3_primary
    taken = datetime.now(UTC) - timedelta(minutes=10)
    BackupCatalog(s3, "spark-backups", "rt-down/", "hive-metastore").create(
        pg, metastore.target.database, taken
    )
    gone = f"postgresql://postgres:{pg.password}@127.0.0.1:1/{metastore.target.database}"
    profile = tmp_path / "prod.toml"
    profile.write_text(
        f'name = "prod"\nenvironment = "live"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[postgres.metastore]\ndsn = "{gone}"\n'
        f'[s3.primary]\nendpoint_url = "{s3.endpoint_url}"\n'
        f'access_key_id = "{s3.access_key_id}"\nsecret_access_key = "{s3.secret_access_key}"\n'
        '[kubernetes]\nenabled = false\n[metastore]\nbackup_prefix = "rt-down/"\n'
    )
    (tmp_path / "home").mkdir()
    done = _run(
        "--profile",
        str(profile),
        "--component",
        "metastore",
        "--report-dir",
        str(tmp_path / "reports"),
        home=tmp_path / "home",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "exit 2: 1 of 1 restore test could not run" in output
    assert "127.0.0.1:1" in output and "Traceback" not in output
    assert pg.password not in output
