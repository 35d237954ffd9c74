"""Faults that break the platform the way incidents do, each with its exact undo."""

from typing import Any

from drtests.faults.airflow import (
    AIRFLOW_FAULTS,
    DeleteDagRuns,
    DeleteTaskInstances,
    DowngradeAirflowSchema,
    DropAirflowTable,
    TruncateAirflowTable,
)
from drtests.faults.base import Fault
from drtests.faults.database import DatabaseTarget, WorkDatabase
from drtests.faults.metastore import (
    METASTORE_FAULTS,
    BlankStorageLocations,
    DeleteDatabaseTables,
    DropMetastoreSchema,
    HalfDroppedPartitions,
    OrphanPartitions,
    SequenceBehind,
    WrongPartitionNames,
)
from drtests.faults.mlflow import (
    MLFLOW_FAULTS,
    DeleteMlflowArtifacts,
    DeleteMlflowExperiment,
    DeleteMlflowRuns,
    DropMlflowTable,
)
from drtests.faults.objectstore import (
    OBJECTSTORE_FAULTS,
    BucketTarget,
    DeleteObjects,
    OverwriteSameSize,
    PermanentLoss,
    StrayObjects,
)
from drtests.faults.platform import ScaledDown, WorkloadTarget

_ALL: tuple[type[Fault[Any]], ...] = (
    ScaledDown,
    WorkDatabase,
    *METASTORE_FAULTS,
    *OBJECTSTORE_FAULTS,
    *AIRFLOW_FAULTS,
    *MLFLOW_FAULTS,
)
FAULTS: dict[str, type[Fault[Any]]] = {c.kind: c for c in _ALL}


def fault_from_ledger(kind: str, params: dict[str, Any]) -> Fault[Any]:
    return FAULTS[kind](**params)


__all__ = [
    "FAULTS",
    "BlankStorageLocations",
    "BucketTarget",
    "DatabaseTarget",
    "DeleteDagRuns",
    "DeleteDatabaseTables",
    "DeleteMlflowArtifacts",
    "DeleteMlflowExperiment",
    "DeleteMlflowRuns",
    "DeleteObjects",
    "DeleteTaskInstances",
    "DowngradeAirflowSchema",
    "DropAirflowTable",
    "DropMetastoreSchema",
    "DropMlflowTable",
    "Fault",
    "HalfDroppedPartitions",
    "OrphanPartitions",
    "OverwriteSameSize",
    "PermanentLoss",
    "ScaledDown",
    "SequenceBehind",
    "StrayObjects",
    "TruncateAirflowTable",
    "WorkDatabase",
    "WorkloadTarget",
    "WrongPartitionNames",
    "fault_from_ledger",
]
