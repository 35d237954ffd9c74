"""Airflow's metadata database under DR: the real Airflow (``apache-airflow-core``) run as
its components, inspected through its own CLI, Python API and REST API."""
