"""MLflow faults: experiments and runs deleted from the backend store by hand, a table
dropped, artifacts deleted from S3."""

from __future__ import annotations

from typing import ClassVar

from drtests.faults.database import DeleteRows, DropTable
from drtests.faults.objectstore import DeleteObjects


class DeleteMlflowExperiment(DeleteRows):
    """An experiment row deleted by hand (MLflow's own delete is a soft delete): its runs
    point at nothing and the server no longer lists it."""

    kind = "mlflow-delete-experiment"
    detected_by = ("mlflow_experiments_match", "mlflow_runs_match")
    table = "experiments"
    column = "name"

    def __init__(self, value: str, bypass_constraints: bool = True) -> None:
        super().__init__(value, bypass_constraints)


class DeleteMlflowRuns(DeleteRows):
    """Runs deleted by hand by their name; their params and metrics left dangling."""

    kind = "mlflow-delete-runs"
    detected_by = ("mlflow_runs_match", "mlflow_artifacts_match")
    table = "runs"
    column = "name"

    def __init__(self, value: str, bypass_constraints: bool = True) -> None:
        super().__init__(value, bypass_constraints)


class DropMlflowTable(DropTable):
    kind = "mlflow-drop-table"
    detected_by = ("mlflow_runs_match",)


class DeleteMlflowArtifacts(DeleteObjects):
    """Every artifact under the artifact root deleted (delete markers on top)."""

    kind = "mlflow-delete-artifacts"
    detected_by: ClassVar[tuple[str, ...]] = ("mlflow_artifacts_match",)


MLFLOW_FAULTS = (DeleteMlflowExperiment, DeleteMlflowRuns, DropMlflowTable, DeleteMlflowArtifacts)
