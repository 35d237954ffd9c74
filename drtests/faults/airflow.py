"""Airflow metadata faults: runs and task instances deleted, tables dropped or emptied, the
schema's migration revision rolled back (what a restore from another Airflow version does)."""

from __future__ import annotations

from drtests.faults.database import DeleteRows, DropTable, SetAlembicVersion, TruncateTable


class DeleteDagRuns(DeleteRows):
    """A DAG's runs deleted (as "Delete" in the UI does: task instances cascade)."""

    kind = "airflow-delete-dag-runs"
    detected_by = ("airflow_dag_runs_match", "airflow_task_instances_match")
    table = "dag_run"
    column = "dag_id"


class DeleteTaskInstances(DeleteRows):
    """A DAG's task instances deleted; its runs left without their tasks."""

    kind = "airflow-delete-task-instances"
    detected_by = ("airflow_task_instances_match",)
    table = "task_instance"
    column = "dag_id"


class DropAirflowTable(DropTable):
    kind = "airflow-drop-table"
    detected_by = ("airflow_tables_present", "airflow_task_instances_match")


class TruncateAirflowTable(TruncateTable):
    kind = "airflow-truncate-table"
    detected_by = ("airflow_dag_runs_match", "airflow_task_instances_match")


class DowngradeAirflowSchema(SetAlembicVersion):
    kind = "airflow-downgrade-alembic-version"
    detected_by = ("airflow_schema_current",)


AIRFLOW_FAULTS = (
    DeleteDagRuns,
    DeleteTaskInstances,
    DropAirflowTable,
    TruncateAirflowTable,
    DowngradeAirflowSchema,
)
