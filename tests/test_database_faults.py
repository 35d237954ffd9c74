"""The faults on application databases (Airflow's, MLflow's): exact undo from the dump taken
before, no change when a restore already repaired the damage, and a live leftover in the
``airflow`` database reverted by the next run through ``[postgres.airflow]``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

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
