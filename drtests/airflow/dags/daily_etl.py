"""A daily extract-transform-load pipeline: the shape of the platform's batch DAGs."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _transform() -> int:
    return sum(range(10))


with DAG(
    "daily_etl",
    start_date=datetime(2026, 1, 1),
    schedule="@daily",
    catchup=False,
    tags=["spark", "etl"],
):
    extract = EmptyOperator(task_id="extract")
    transform = PythonOperator(task_id="transform", python_callable=_transform)
    load = EmptyOperator(task_id="load")
    extract >> transform >> load
