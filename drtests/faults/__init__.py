"""Faults that break the platform the way incidents do, each with its exact undo."""

import logging
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


#: the entry point group under which a package registers its own faults, so that the next
#: run can revert what a killed run of its scenarios left (``drtests.api``)
FAULT_ENTRY_POINTS = "drtests.faults"


def fault_class(kind: str) -> type[Fault[Any]]:
    """The fault class of a ledger entry's kind: the suite's, or one an installed package
    registers under the ``drtests.faults`` entry point group."""
    if kind in FAULTS:
        return FAULTS[kind]
    from importlib.metadata import entry_points

    for entry in entry_points(group=FAULT_ENTRY_POINTS):
        try:
            found = entry.load()
        except Exception as exc:  # a broken plugin must not stop the recovery of the others
            logging.getLogger(__name__).warning("fault plugin %s: %s", entry.value, exc)
            continue
        if isinstance(found, type) and issubclass(found, Fault) and found.kind == kind:
            return found
    raise KeyError(kind)


def fault_from_ledger(kind: str, params: dict[str, Any]) -> Fault[Any]:
    return fault_class(kind)(**params)


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
