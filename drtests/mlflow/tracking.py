"""What MLflow holds, read and written through the MLflow client against the tracking
server's REST API: the seeded experiments, runs, metrics, params, artifacts and registered
model; the state a restore must bring back; and the checks that compare the two, each
finding naming the experiment, run, artifact or model version that differs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from drtests.errors import DRError
from drtests.metastore.changes import ChangeLog
from drtests.results import CheckResult, Finding, run_check
from drtests.schema_fingerprint import (
    SCHEMA_CHECK,
    SchemaFingerprint,
    schema_differences,
    schema_fingerprint,
)

#: experiment → runs (name → learning rate); the first run of each is registered
SEED = {
    "churn-model": {"churn-lr-0.1": 0.1, "churn-lr-0.05": 0.05, "churn-lr-0.01": 0.01},
    "demand-forecast": {"forecast-depth-4": 0.2, "forecast-depth-8": 0.3},
}
REGISTERED_MODEL = "churn-classifier"
STEPS = 5


def client(url: str) -> Any:
    """A client that gives a slow server about a minute (three retries, 1-2-4 s apart) but
    does not retry a broken one for many minutes (its defaults: 7 retries, exponential
    back-off, 120 s timeout)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def log_run(mlflow: Any, experiment_id: str, name: str, rate: float, workdir: Path) -> str:
    """A finished training run: params, a metric history, tags and two artifacts."""
    from mlflow.entities import Metric, Param, RunTag

    run = mlflow.create_run(experiment_id, run_name=name)
    run_id = run.info.run_id
    metrics = [
        Metric("rmse", round(1.0 / (step + 1) + rate, 6), 1_700_000_000_000 + step, step)
        for step in range(STEPS)
    ] + [Metric("accuracy", round(0.9 - rate, 6), 1_700_000_000_000, 0)]
    params = [Param("learning_rate", str(rate)), Param("epochs", str(STEPS))]
    mlflow.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("team", "ml-platform")])
    folder = workdir / run_id
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text(f"weights for {name}\n" * 200)
    (folder / "metrics.json").write_text(f'{{"rmse": {rate}}}\n')
    mlflow.log_artifact(run_id, str(folder / "model.txt"), "model")
    mlflow.log_artifact(run_id, str(folder / "metrics.json"))
    mlflow.set_terminated(run_id)
    return str(run_id)


def seed(url: str, workdir: Path) -> None:
    mlflow = client(url)
    registered: list[str] = []
    for experiment, runs in SEED.items():
        experiment_id = mlflow.create_experiment(experiment)
        ids = [log_run(mlflow, experiment_id, n, r, workdir) for n, r in runs.items()]
        registered.append(ids[0])
    mlflow.create_registered_model(REGISTERED_MODEL)
    for run_id in registered:
        mlflow.create_model_version(REGISTERED_MODEL, f"runs:/{run_id}/model", run_id)


@dataclass
class MlflowState:
    experiments: dict[str, str] = field(default_factory=dict)  # name → lifecycle stage
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id → what it holds
    artifacts: dict[str, str] = field(default_factory=dict)  # run id/path → sha256
    models: dict[str, str] = field(default_factory=dict)  # model/version → run, source, status
    #: the backend store's schema, when the state was read with its DSN
    schema: SchemaFingerprint | None = None


def _artifact_paths(mlflow: Any, run_id: str, path: str | None = None) -> list[str]:
    paths: list[str] = []
    for item in mlflow.list_artifacts(run_id, path):
        paths += _artifact_paths(mlflow, run_id, item.path) if item.is_dir else [item.path]
    return paths


def read_experiments(mlflow: Any) -> tuple[dict[str, str], dict[str, str]]:
    from mlflow.entities import ViewType

    found = mlflow.search_experiments(view_type=ViewType.ALL)
    names = {e.name: e.lifecycle_stage for e in found if e.name != "Default"}
    ids = {e.experiment_id: e.name for e in found if e.name != "Default"}
    return names, ids


def read_runs(mlflow: Any, experiment_ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    from mlflow.entities import ViewType

    runs: dict[str, dict[str, Any]] = {}
    if not experiment_ids:
        return runs
    for run in mlflow.search_runs(list(experiment_ids), run_view_type=ViewType.ALL):
        run_id = run.info.run_id
        runs[run_id] = {
            "experiment": experiment_ids.get(run.info.experiment_id, "?"),
            "name": run.info.run_name,
            "status": run.info.status,
            "params": dict(run.data.params),
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "metrics": {
                key: sorted((m.step, m.value) for m in mlflow.get_metric_history(run_id, key))
                for key in sorted(run.data.metrics)
            },
        }
    return runs


def read_artifacts(mlflow: Any, run_ids: list[str]) -> dict[str, str]:
    """Every artifact downloaded through the server, by its SHA-256."""
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in run_ids:
            for path in _artifact_paths(mlflow, run_id):
                local = mlflow.download_artifacts(run_id, path, tmp)
                digests[f"{run_id}/{path}"] = hashlib.sha256(Path(local).read_bytes()).hexdigest()
    return digests


def read_models(mlflow: Any) -> dict[str, str]:
    return {
        f"{v.name}/v{v.version}": f"run {v.run_id}, {v.source}, {v.status}"
        for v in mlflow.search_model_versions(f"name='{REGISTERED_MODEL}'")
    }


def read_state(url: str, dsn: str | None = None) -> MlflowState:
    mlflow = client(url)
    names, ids = read_experiments(mlflow)
    runs = read_runs(mlflow, ids)
    schema = None
    if dsn is not None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            schema = schema_fingerprint(conn)
    return MlflowState(
        names, runs, read_artifacts(mlflow, sorted(runs)), read_models(mlflow), schema
    )


def run_changes(dsn: str) -> ChangeLog:
    """Runs by id with the time of their last change (end, else start), for the RPO."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT run_uuid, coalesce(end_time, start_time) / 1000 FROM runs"
        ).fetchall()
    return ChangeLog({str(r[0]): int(r[1]) for r in rows})


# ---------------------------------------------------------------- checks


def _compare(
    check: str, what: str, expected: dict[str, Any], actual: dict[str, Any]
) -> list[Finding]:
    findings = []
    for key, value in sorted(expected.items()):
        if key not in actual:
            findings.append(Finding(check, "error", f"{what} {key}", "missing"))
        elif actual[key] != value:
            findings.append(Finding(check, "error", f"{what} {key}", f"{value} → {actual[key]}"))
    return findings


class ServerGone(DRError):
    """The tracking server did not answer, after the client's own retries."""


#: how requests and urllib3 word a server that is not there (after their retries)
_GONE = ("Connection refused", "Failed to establish a new connection", "Max retries exceeded")


class CheckingClient:
    """An MLflow client for a round of checks: once a request finds the server gone (after
    the client waited out its retries), the requests that follow fail at once with the
    same reason instead of each waiting the retries out again."""

    def __init__(self, mlflow: Any, url: str) -> None:
        self._mlflow = mlflow
        self._url = url
        self.gone = ""

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._mlflow, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.gone:
                raise ServerGone(self.gone)
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                reason = next((marker for marker in _GONE if marker in str(exc)), "")
                if reason:
                    self.gone = f"MLflow server {self._url} does not answer: {reason}"
                    raise ServerGone(self.gone) from exc
                raise

        return call


def checking_client(url: str) -> CheckingClient:
    return CheckingClient(client(url), url)


def check_mlflow(
    url: str,
    baseline: MlflowState,
    dsn: str | None = None,
    mlflow: CheckingClient | None = None,
) -> list[CheckResult]:
    """The runbook's "MLflow experiments accessible" and "Verify Artifacts", through the
    restarted server: every experiment, run, metric, param, artifact and model version of
    the baseline comes back equal. ``mlflow``: a client that may already know the server
    is gone."""
    mlflow = mlflow or checking_client(url)
    ids: dict[str, str] = {}

    def experiments() -> list[Finding]:
        names, found = read_experiments(mlflow)
        ids.update(found)
        return _compare("mlflow_experiments_match", "experiment", baseline.experiments, names)

    def runs() -> list[Finding]:
        if not ids:
            ids.update(read_experiments(mlflow)[1])
        actual = read_runs(mlflow, ids)
        return _compare("mlflow_runs_match", "run", baseline.runs, actual)

    def artifacts() -> list[Finding]:
        run_ids = sorted({key.split("/", 1)[0] for key in baseline.artifacts})
        actual: dict[str, str] = {}
        for run_id in run_ids:
            try:
                actual.update(read_artifacts(mlflow, [run_id]))
            except ServerGone:
                raise
            except Exception:  # noqa: S112 - reported as its missing artifacts below
                continue
        return _compare("mlflow_artifacts_match", "artifact", baseline.artifacts, actual)

    def models() -> list[Finding]:
        return _compare(
            "mlflow_models_match", "model version", baseline.models, read_models(mlflow)
        )

    def schema() -> list[Finding]:
        assert dsn is not None and baseline.schema is not None
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            return schema_differences(baseline.schema, schema_fingerprint(conn))

    schema_check = (
        [run_check(SCHEMA_CHECK, "the backend store's schema equals the baseline's", schema)]
        if dsn is not None and baseline.schema is not None
        else []
    )
    return [
        *schema_check,
        run_check("mlflow_experiments_match", "experiments equal the baseline", experiments),
        run_check("mlflow_runs_match", "runs, params, metric histories equal the baseline", runs),
        run_check(
            "mlflow_artifacts_match",
            "artifacts download through the server with the baseline's SHA-256",
            artifacts,
        ),
        run_check("mlflow_models_match", "registered model versions equal the baseline", models),
    ]
