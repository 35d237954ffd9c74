"""Wires the fixtures in; no logic here."""

pytest_plugins = [
    "fixtures.environment",
    "fixtures.scenario",
    "fixtures.metastore",
    "fixtures.objectstore",
    "fixtures.faults",
    "fixtures.hive",
    "fixtures.monitoring",
    "fixtures.kubernetes",
    "fixtures.k3s",
    "fixtures.profiles",
    "fixtures.airflow",
    "fixtures.mlflow",
    "fixtures.restore_test",
]
