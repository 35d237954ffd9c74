"""The faults on application databases (Airflow's, MLflow's): exact undo from the dump taken
before, no change when a restore already repaired the damage, and a live leftover in the
``airflow`` database reverted by the next run through ``[postgres.airflow]``."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtests import patience
from drtests.config import PostgresTarget, Profile, Safety
from drtests.environments import Environment
from drtests.faults import (
    DatabaseTarget,
    DeleteDagRuns,
    DeleteMlflowExperiment,
    DowngradeAirflowSchema,
    DropAirflowTable,
    Fault,
    TruncateAirflowTable,
)
from drtests.ledger import FaultLedger
from drtests.postgres import create_database, drop_database, table_fingerprints
from drtests.recovery import revert_leftovers
from drtests.safety import SafetyRails

SCHEMA = """
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('head1');
CREATE TABLE dag_run (dag_id text, run_id text, PRIMARY KEY (dag_id, run_id));
CREATE TABLE task_instance (dag_id text, run_id text, task_id text,
  FOREIGN KEY (dag_id, run_id) REFERENCES dag_run ON DELETE CASCADE);
INSERT INTO dag_run VALUES ('etl', 'r1'), ('etl', 'r2'), ('ingest', 'r1');
INSERT INTO task_instance VALUES ('etl', 'r1', 'a'), ('etl', 'r2', 'a'), ('ingest', 'r1', 'b');
CREATE TABLE experiments (experiment_id int PRIMARY KEY, name text);
CREATE TABLE runs (run_uuid text PRIMARY KEY, experiment_id int REFERENCES experiments);
INSERT INTO experiments VALUES (1, 'churn'), (2, 'forecast');
INSERT INTO runs VALUES ('a', 1), ('b', 2);
"""
_numbers = itertools.count(1)

FAULTS: list[Fault] = [
    DeleteDagRuns("etl"),
    DropAirflowTable("task_instance"),
    TruncateAirflowTable("dag_run"),
    DowngradeAirflowSchema("older"),
    DeleteMlflowExperiment("churn"),
]


@pytest.fixture
def app_database(dr_environment: Environment, tmp_path: Path) -> Iterator[DatabaseTarget]:
    database = f"appdb_{next(_numbers):03d}"
    create_database(dr_environment.postgres, database)
    target = DatabaseTarget(dr_environment.postgres, database, "local", tmp_path, "airflow")
    with target.connect() as conn:
        conn.execute(SCHEMA)
    yield target
    drop_database(dr_environment.postgres, database)


def _state(target: DatabaseTarget) -> dict[str, object]:
    with target.connect() as conn:
        return dict(table_fingerprints(conn))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.kind)
def test_revert_puts_back_exactly_what_was_broken(
    fault: Fault, app_database: DatabaseTarget
) -> None:
    before = _state(app_database)
    undo = fault.inject(app_database)
    assert _state(app_database) != before
    first = fault.revert(app_database, undo)
    assert "rebuilt" in first or "set back" in first
    assert _state(app_database) == before
    again = fault.revert(app_database, undo)
    assert "nothing to do" in again or "already" in again
    assert _state(app_database) == before


def test_delete_of_rows_that_do_not_exist_is_refused(app_database: DatabaseTarget) -> None:
    with pytest.raises(ValueError, match="no dag_run row where dag_id = 'missing'"):
        DeleteDagRuns("missing").inject(app_database)


def test_next_run_reverts_a_live_airflow_leftover(
    app_database: DatabaseTarget, dr_environment: Environment, tmp_path: Path
) -> None:
    before = _state(app_database)
    live = DatabaseTarget(app_database.endpoint, app_database.database, "live", tmp_path, "airflow")
    fault = DeleteDagRuns("etl")
    ledger = FaultLedger(tmp_path / "ledger.jsonl")
    fid = ledger.begin(fault.kind, fault.describe(), live.describe(), fault.params())
    ledger.injected(fid, fault.inject(live))
    profile = Profile(
        name="staging",
        environment="live",
        postgres={  # type: ignore[arg-type]
            "airflow": PostgresTarget(dsn=dr_environment.postgres.dsn(app_database.database))
        },
        safety=Safety(allow_list=(f"postgresql://127.0.0.1:{dr_environment.postgres.port}/*",)),
        state_dir=tmp_path,
    )

    done = revert_leftovers(ledger, profile, SafetyRails(profile, allow_destructive=True))

    assert "reverted" in done[0], done
    assert not ledger.pending()
    assert _state(app_database) == before


def test_revert_wins_against_a_client_that_keeps_reconnecting(
    app_database: DatabaseTarget,
) -> None:
    """A connection pool reconnects as soon as its session is terminated; the swap must
    still happen (it once failed with 'database is being accessed by other users')."""
    before = _state(app_database)
    fault = DeleteDagRuns("etl")
    undo = fault.inject(app_database)
    stop = threading.Event()
    connections = 0

    def pool() -> None:
        nonlocal connections
        while not stop.is_set():
            try:
                with app_database.connect() as conn:
                    connections += 1
                    while not stop.is_set():
                        conn.execute("SELECT 1")
                        time.sleep(0.005)
            except Exception:  # refused while the swap runs, or terminated: reconnect
                time.sleep(0.001)

    clients = [threading.Thread(target=pool) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        while connections < 3:
            time.sleep(0.01)
        assert "rebuilt" in fault.revert(app_database, undo)
        deadline = time.monotonic() + 30
        while connections <= 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert _state(app_database) == before
    assert connections > 3, "the clients never reconnected to the restored database"


def test_fault_wins_a_deadlock_with_a_running_scheduler(app_database: DatabaseTarget) -> None:
    """A scheduler reads ``task_instance`` and then ``dag_run`` in one transaction while the
    fault's ``TRUNCATE dag_run CASCADE`` locks them in the other order: PostgreSQL aborts the
    truncate as the deadlock's victim (it once failed the game day so), and the fault sends
    it again."""
    retried_before = patience.tally().retried
    fault = TruncateAirflowTable("dag_run")
    undo = fault.capture(app_database)
    injected = threading.Event()

    def inject() -> None:
        fault.apply(app_database, undo)
        injected.set()

    with app_database.connect() as scheduler:
        scheduler.execute("SET deadlock_timeout = '5s'")  # the truncate checks first
        with scheduler.transaction():
            scheduler.execute("SELECT count(*) FROM task_instance")
            injector = threading.Thread(target=inject)
            injector.start()
            _wait_for_lock_wait(app_database)
            scheduler.execute("SELECT count(*) FROM dag_run")  # closes the cycle
        injector.join(timeout=60)
    assert injected.is_set(), "the fault did not survive the deadlock"
    assert patience.tally().retried > retried_before
    with app_database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM dag_run").fetchone() == (0,)
    fault.revert(app_database, undo)


def _wait_for_lock_wait(target: DatabaseTarget) -> None:
    deadline = time.monotonic() + 30
    with target.connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'",
                (target.database,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the fault never waited for the scheduler's lock")
