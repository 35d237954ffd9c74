"""MLflow Restore, section 4 of the restore procedure, with the real MLflow server.

Backend store faults: baseline read through the server (experiments, runs, metric
histories, artifacts by SHA-256, model versions) → backup → a run logged after it (lost by
the restore: the measured RPO) → incident → detection → stop MLflow → download, verify →
safety snapshot → restore → artifact store listed → restart → API answers → verification
through the restarted server → objectives (10-20 minutes).

Artifacts deleted from S3 come back from object versions; a server killed while a client
writes comes back with every write it acknowledged. Each has its negative control.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drtests.backups import BackupCatalog
from drtests.faults import (
    DeleteMlflowArtifacts,
    DeleteMlflowExperiment,
    DeleteMlflowRuns,
    DropMlflowTable,
    Fault,
)
from drtests.fixtures.environment import require_local_platform
from drtests.fixtures.faults import InjectFault
from drtests.fixtures.mlflow import MlflowUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import measure_rpo
from drtests.mlflow.tracking import SEED, checking_client, client, log_run
from drtests.objectstore import iter_objects
from drtests.procedures.mlflow import (
    RUNBOOK_MLFLOW,
    MlflowRestoreTarget,
    mlflow_artifact_restore,
    mlflow_restore,
)
from drtests.processes import wait_until
from drtests.results import CheckResult, Finding, RpoMeasurement, failed

PROCEDURE = "mlflow_restore"
FAULTS: list[Fault[Any]] = [
    DeleteMlflowExperiment("demand-forecast"),
    DeleteMlflowRuns("churn-lr-0.1"),
    DropMlflowTable("metrics"),
]

pytestmark = [
    pytest.mark.gameday,
    pytest.mark.destructive,
    pytest.mark.mlflow,
    pytest.mark.xdist_group("mlflow"),
]


def _ids(fault: Fault[Any]) -> str:
    return fault.kind.removeprefix("mlflow-")


@pytest.mark.parametrize("fault", FAULTS, ids=_ids)
def test_mlflow_backend_store_restore(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    mlflow: MlflowUnderTest,
    mlflow_services: MlflowRestoreTarget,
    mlflow_backups: BackupCatalog,
    inject_fault: InjectFault,
    tmp_path: Path,
) -> None:
    scenario.begin(PROCEDURE, "mlflow", f"MLflow restore after: {fault.describe()}", RUNBOOK_MLFLOW)

    # 1. Baseline and backup
    scenario.authorize(mlflow_backups.target, "write an MLflow backup")
    baseline = mlflow.state()
    assert not failed(mlflow.check(baseline)), "MLflow must be healthy before the fault"
    with scenario.journal.step("Take backup", f"{RUNBOOK_MLFLOW} · backup") as step:
        backup = mlflow_backups.create(mlflow.target.endpoint, mlflow.target.database)
        step.detail = f"{backup.uri} ({backup.size} bytes)"

    # 2. A training run logged after the backup: what the restore will lose
    tracking = client(mlflow.url)
    experiment = tracking.get_experiment_by_name("churn-model").experiment_id
    late_run = log_run(tracking, experiment, "churn-after-backup", 0.2, tmp_path / "late")
    changes_before_fault = mlflow.changes()

    # 3. The incident
    scenario.incident()
    inject_fault(fault, mlflow.target)

    # 4. Detection
    detected = scenario.detected(mlflow.check(baseline), fault.detected_by)
    assert set(fault.detected_by) <= detected, (
        f"not detected by {set(fault.detected_by) - detected}"
    )

    # 5. Restore by the runbook
    assert scenario.incident_time is not None
    outcome = mlflow_restore(
        mlflow_services,
        mlflow_backups,
        datetime.fromtimestamp(scenario.incident_time, UTC),
        scenario.journal,
    )
    assert outcome.backup == backup
    scenario.restored(backup.uri)

    # 6. Verification through the restarted server
    scenario.verified(mlflow.check(baseline))

    # 7. Objectives: the late run is lost
    changes_after_restore = mlflow.changes()
    scenario.measured_rpo(
        measure_rpo(changes_before_fault, changes_after_restore, scenario.incident_time)
    )
    assert late_run in changes_before_fault.events
    assert late_run not in changes_after_restore.events
    scenario.assert_objectives_met()


@pytest.mark.negative_control
@pytest.mark.parametrize("fault", FAULTS, ids=_ids)
def test_mlflow_fault_without_restore_fails_verification(
    fault: Fault[Any],
    scenario: ScenarioRecorder,
    mlflow: MlflowUnderTest,
    mlflow_services: MlflowRestoreTarget,
    inject_fault: InjectFault,
) -> None:
    """Negative control: the fault with the restore skipped must fail verification."""
    scenario.begin(
        PROCEDURE,
        "mlflow",
        f"No restore after: {fault.describe()}",
        f"{RUNBOOK_MLFLOW} (skipped)",
        kind="negative-control",
    )
    baseline = mlflow.state()
    scenario.incident()
    inject_fault(fault, mlflow.target)
    # nothing happens between detection and verification: one run of the checks serves both
    results = mlflow.check(baseline)
    scenario.detected(results, fault.detected_by)

    assert not scenario.verified(results), "verification passed unrestored"
    assert set(fault.detected_by) <= set(scenario.record.detected_by)


@pytest.mark.parametrize("restore", [True, False], ids=["version-restore", "no-restore"])
def test_mlflow_artifacts_deleted_from_s3(
    restore: bool,
    scenario: ScenarioRecorder,
    mlflow: MlflowUnderTest,
    mlflow_services: MlflowRestoreTarget,
    inject_fault: InjectFault,
) -> None:
    """Artifacts deleted under the artifact root: the backend store is intact, the S3
    machinery (object versions) brings the artifacts back, and the server serves them with
    their original checksums. Control: without the version restore, verification fails."""
    scenario.begin(
        "mlflow_artifact_restore",
        "mlflow",
        "MLflow artifacts deleted from S3",
        f"{RUNBOOK_MLFLOW} step 3 with 000 §2 Option A" + ("" if restore else " (skipped)"),
        kind="scenario" if restore else "negative-control",
    )
    baseline = mlflow.state()
    s3 = mlflow.artifacts.endpoint.client()
    keys = [o.key for o in iter_objects(s3, mlflow.artifacts.bucket, mlflow.artifacts.prefix)]
    fault = DeleteMlflowArtifacts(mlflow.artifacts.prefix)

    scenario.incident(own_second=True)
    assert scenario.incident_time is not None
    inject_fault(fault, mlflow.artifact_bucket)
    detection = mlflow.check(baseline)
    scenario.detected(detection, fault.detected_by)
    assert set(fault.detected_by) <= set(scenario.record.detected_by)

    if restore:
        # the last instant before the incident's second (S3 times are whole seconds)
        as_of = datetime.fromtimestamp(int(scenario.incident_time), UTC) - timedelta(microseconds=1)
        report = mlflow_artifact_restore(mlflow.artifacts, as_of, keys, scenario.journal)
        assert report.restored == len(keys)
        scenario.restored(f"object versions as of {as_of:%H:%M:%S}")
    # without the restore nothing happened since detection: its checks serve verification
    verified = scenario.verified(mlflow.check(baseline) if restore else detection)
    if not restore:
        assert not verified, "verification passed although no artifact was restored"
        return
    scenario.measured_rpo(
        RpoMeasurement(
            len(
                set(keys)
                - set(
                    o.key
                    for o in iter_objects(s3, mlflow.artifacts.bucket, mlflow.artifacts.prefix)
                )
            ),
            None,
            0.0,
        )
    )
    scenario.assert_objectives_met()


class MetricStream:
    """Logs one metric step after another to a run while the server is killed under it;
    remembers every step the server acknowledged and carries on once it answers again.
    A write the kill interrupted is either refused, or retried by the client until the
    server was back (held up for longer than a write ever takes)."""

    HELD_UP_S = 1.0

    def __init__(self, url: str, run_id: str) -> None:
        self.client = client(url)
        self.run_id = run_id
        self.acknowledged: list[int] = []
        self.refused = 0
        self.held_up = 0
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        step = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.client.log_metric(self.run_id, "loss", 1.0 / (step + 1), step=step)
                self.acknowledged.append(step)
                self.held_up += time.monotonic() - started > self.HELD_UP_S
            except Exception:  # the server went away mid-request: not acknowledged
                self.refused += 1
                time.sleep(0.2)
            step += 1

    def start(self) -> None:
        self._thread.start()
        wait_until(lambda: len(self.acknowledged) >= 5, 60, "acknowledged metric writes")

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=60)


@pytest.mark.platform
@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "no-restart"])
def test_mlflow_server_killed_mid_request(
    supervised: bool,
    scenario: ScenarioRecorder,
    mlflow: MlflowUnderTest,
    mlflow_services: MlflowRestoreTarget,
) -> None:
    """The mlflow-server pod killed while a training job logs metrics: it is rescheduled
    and every write it acknowledged is there (RPO 0). Control: nothing restarts it."""
    platform = require_local_platform(
        mlflow_services.platform, "MLflow scenarios run on an environment this run creates"
    )
    name = mlflow_services.services[0]
    scenario.begin(
        "pod_recovery",
        "mlflow",
        f"{name} killed during metric writes",
        "000 Restore Procedure · Post-Restore Validation (services restarted)"
        + ("" if supervised else " (no restart)"),
        kind="scenario" if supervised else "negative-control",
    )
    baseline = mlflow.state()
    # one client for the writes' check and the verification: once it finds the server
    # gone, the checks after it do not wait their retries out again
    tracking = checking_client(mlflow.url)
    experiment = tracking.get_experiment_by_name(next(iter(SEED))).experiment_id
    run_id = tracking.create_run(experiment, run_name="training-during-kill").info.run_id
    stream = MetricStream(mlflow.url, run_id)
    stream.start()

    scenario.incident()
    with scenario.journal.step("Kill pod", "kill -9 of the server's process tree") as step:
        if supervised:
            step.detail = platform.kill_and_measure(name, mlflow_services.ready_timeout).describe()
            scenario.restored(None)
            acknowledged_before = len(stream.acknowledged)
            wait_until(
                lambda: len(stream.acknowledged) > acknowledged_before + 5, 60, "writes resumed"
            )
        else:
            platform.kill(name)
            step.detail = "killed; nothing restarts it"
            time.sleep(2)
    stream.finish()
    with scenario.journal.step("Collect logs and events", "evidence") as step:
        step.detail = "; ".join(platform.evidence(name))

    written = CheckResult("acknowledged_writes_present", "every acknowledged metric step kept")
    try:
        history = {m.step for m in tracking.get_metric_history(run_id, "loss")}
        missing = sorted(set(stream.acknowledged) - history)
        if missing:
            written.findings.append(
                Finding(
                    written.name, "error", f"run {run_id}", f"{len(missing)} lost: {missing[:5]}"
                )
            )
    except Exception as exc:  # the server does not answer
        written.error = f"cannot run: {str(exc).splitlines()[0][:200]}"
    verified = scenario.verified([written, *mlflow.check(baseline, tracking)])
    with scenario.journal.step("Count acknowledged writes", "RPO for acknowledged data") as step:
        step.detail = (
            f"{len(stream.acknowledged)} acknowledged, {stream.refused} refused, "
            f"{stream.held_up} retried until the server was back"
        )
    if not supervised:
        assert not verified
        return
    assert stream.refused or stream.held_up, "the kill did not interrupt any request"
    scenario.measured_rpo(RpoMeasurement(len(written.findings), None, 0.0))
    scenario.assert_objectives_met()
