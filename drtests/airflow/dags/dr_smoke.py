"""Run after a restore: one Python task, so the scheduler must hand it to a worker and the
worker must report back through the API server."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _check() -> str:
    return "scheduler, worker and API server work"


with DAG("dr_smoke", start_date=datetime(2026, 1, 1), schedule=None, catchup=False, tags=["dr"]):
    PythonOperator(task_id="smoke", python_callable=_check)
