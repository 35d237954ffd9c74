"""An hourly ingest with a fan-out: more task instances per run than the ETL."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(
    "hourly_ingest",
    start_date=datetime(2026, 1, 1),
    schedule="@hourly",
    catchup=False,
    tags=["ingest"],
):
    start = EmptyOperator(task_id="start")
    sources = [EmptyOperator(task_id=f"ingest_{name}") for name in ("orders", "clicks", "users")]
    done = EmptyOperator(task_id="done")
    start >> sources >> done
