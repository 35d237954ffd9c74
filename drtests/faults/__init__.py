"""Faults that break the platform the way incidents do, each with its exact undo."""

from typing import Any

from drtests.faults.base import Fault
from drtests.faults.metastore import (
    METASTORE_FAULTS,
    BlankStorageLocations,
    DeleteDatabaseTables,
    DropMetastoreSchema,
    HalfDroppedPartitions,
    MetastoreTarget,
    OrphanPartitions,
    SequenceBehind,
    WrongPartitionNames,
)
from drtests.faults.objectstore import (
    OBJECTSTORE_FAULTS,
    BucketTarget,
    DeleteObjects,
    OverwriteSameSize,
    PermanentLoss,
)

_ALL: tuple[type[Fault[Any]], ...] = (*METASTORE_FAULTS, *OBJECTSTORE_FAULTS)
FAULTS: dict[str, type[Fault[Any]]] = {c.kind: c for c in _ALL}


def fault_from_ledger(kind: str, params: dict[str, Any]) -> Fault[Any]:
    return FAULTS[kind](**params)


__all__ = [
    "FAULTS",
    "BlankStorageLocations",
    "BucketTarget",
    "DeleteDatabaseTables",
    "DeleteObjects",
    "DropMetastoreSchema",
    "Fault",
    "HalfDroppedPartitions",
    "MetastoreTarget",
    "OrphanPartitions",
    "OverwriteSameSize",
    "PermanentLoss",
    "SequenceBehind",
    "WrongPartitionNames",
    "fault_from_ledger",
]
