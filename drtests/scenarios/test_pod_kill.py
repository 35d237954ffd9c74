"""Pod kills (issue scope: "kill pods" faults) on the embedded platform: the workload's
process tree is killed with -9, the supervisor restarts it as a ReplicaSet would, and
recovery is measured as Krkn reports it (rescheduled, ready, total).

- The metastore's PostgreSQL is killed in the middle of a stream of committed writes:
  every transaction whose commit was acknowledged before the kill must be there after
  crash recovery (RPO 0 for committed data).
- The metastore services (the local front end; the real HMS where Java is present) are
  killed and must come back and answer as before.

Controls: the same kills with no supervisor to restart the workload must fail verification.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from drtests.environments import DatabaseServer, Environment
from drtests.errors import DRError
from drtests.fixtures.environment import require_local_platform
from drtests.fixtures.hive import HiveMetastore
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.fixtures.scenario import ScenarioRecorder
from drtests.metastore.changes import ChangeLog, commit_partition_stats_updates
from drtests.metastore.verify import check_records
from drtests.platform.local import LocalPlatform
from drtests.procedures import MetastoreRestoreTarget
from drtests.processes import wait_until
from drtests.results import CheckResult, Finding, RpoMeasurement

pytestmark = [pytest.mark.gameday, pytest.mark.destructive, pytest.mark.platform]
PROCEDURE = "pod_recovery"
RUNBOOK = "000 Restore Procedure · Post-Restore Validation (services restarted)"
POSTGRES = "postgresql-hive"
S3_SCOPE = (
    "the local S3 server (moto) keeps objects in memory: killing it would lose every object, "
    "unlike MinIO on a persistent volume; the embedded game day does not kill it, and S3 "
    "durability is exercised by the S3 restore scenarios"
)


class CommitStream:
    """Commits metastore changes one transaction at a time until the server goes away;
    remembers every change whose COMMIT was acknowledged."""

    def __init__(self, metastore: MetastoreUnderTest) -> None:
        self.metastore = metastore
        self.acknowledged: dict[int | str, int] = {}
        self.error = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.metastore.connect() as conn:
                while True:
                    for event in commit_partition_stats_updates(conn, 1):
                        self.acknowledged[event] = 0
        except (psycopg.Error, DRError) as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def start(self) -> None:
        self._thread.start()
        wait_until(lambda: len(self.acknowledged) >= 20, 30, "committed writes")

    def join(self) -> None:
        self._thread.join(timeout=30)


@pytest.fixture
def supervised_postgres(
    dr_environment: Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalPlatform, DatabaseServer]]:
    """The worker's PostgreSQL as a workload of a local platform; whatever a scenario did,
    the server runs again afterwards."""
    server = dr_environment.postgres_server
    if server is None or server.process is None:
        pytest.skip("killing the database needs a server this run owns (local or containers)")
    platform = LocalPlatform(tmp_path_factory.mktemp("pg-platform"))
    platform.add_process(POSTGRES, server.process, server.accepting)
    platform.scale(POSTGRES, 1)
    try:
        yield platform, server
    finally:
        platform.stop_supervising()
        if not server.accepting():
            server.start()


def _committed_present(before: dict[int | str, int], after: ChangeLog) -> CheckResult:
    result = CheckResult("acknowledged_commits_present", "every acknowledged commit survived")
    missing = sorted(set(before) - set(after.events), key=str)
    if missing:
        result.findings.append(
            Finding(result.name, "error", "NOTIFICATION_LOG", f"{len(missing)} lost: {missing[:5]}")
        )
    return result


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "no-restart"])
def test_postgres_killed_mid_writes_keeps_every_committed_transaction(
    supervised: bool,
    dr_environment: Environment,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    supervised_postgres: tuple[LocalPlatform, DatabaseServer],
) -> None:
    platform, server = supervised_postgres
    scenario.begin(
        PROCEDURE,
        "platform",
        "Metastore PostgreSQL killed during committed writes",
        RUNBOOK + ("" if supervised else " (no restart)"),
        kind="scenario" if supervised else "negative-control",
    )
    with scenario.journal.step("Keep the S3 server running", "scope") as step:
        step.detail = S3_SCOPE
    scenario.authorize(dr_environment.pg_target("*"), "kill the metastore's PostgreSQL")
    stream = CommitStream(metastore)
    stream.start()
    scenario.incident()
    with scenario.journal.step("Kill pod", "kill -9 of the postmaster and its backends") as step:
        if supervised:
            recovery = platform.kill_and_measure(POSTGRES, timeout=60)
            step.detail = recovery.describe()
        else:
            platform.kill(POSTGRES)
            step.detail = "killed; nothing restarts it"
    stream.join()
    acknowledged = dict(stream.acknowledged)
    if supervised:
        with scenario.journal.step("Collect logs and events", "evidence") as step:
            step.detail = "; ".join(platform.evidence(POSTGRES))
    with scenario.journal.step("Count acknowledged commits", "RPO for committed data") as step:
        step.detail = f"{len(acknowledged)} acknowledged; the writer stopped on: {stream.error}"
    if supervised:
        scenario.restored(None)
    try:
        after = metastore.change_log()
        results = [_committed_present(acknowledged, after), *metastore.detect(metastore.baseline())]
    except DRError as exc:
        down = CheckResult("acknowledged_commits_present", "every acknowledged commit survived")
        down.error = f"cannot run: {exc}"
        results = [down]
    verified = scenario.verified(results)
    if not supervised:
        assert not verified
        assert check_records(results)[0].error
        return
    assert verified, [r.name for r in results if not r.ok]
    lost = len(set(acknowledged) - set(after.events))
    scenario.measured_rpo(RpoMeasurement(lost, None, 0.0 if not lost else float("inf")))
    scenario.assert_objectives_met()
    assert server.accepting()


@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "no-restart"])
def test_metastore_service_killed_comes_back(
    supervised: bool,
    scenario: ScenarioRecorder,
    metastore: MetastoreUnderTest,
    metastore_services: MetastoreRestoreTarget,
) -> None:
    platform = require_local_platform(
        metastore_services.platform,
        "this kills the metastore service's local process; on Kubernetes the K3s pod-kill "
        "scenario kills a pod",
    )
    name = metastore_services.metastore_service
    _kill_service(scenario, platform, name, supervised, metastore_services.ready_timeout)
    answer = CheckResult("service_answers", f"{name} ready and answering")
    if not platform.ready(name):
        answer.findings.append(Finding(answer.name, "error", name, "not ready"))
    _finish(scenario, supervised, [answer, *metastore.detect(metastore.baseline())])


@pytest.mark.hive
@pytest.mark.xdist_group("hive")
@pytest.mark.parametrize("supervised", [True, False], ids=["supervised", "no-restart"])
def test_real_hive_metastore_killed_comes_back(
    supervised: bool, scenario: ScenarioRecorder, hive_metastore: HiveMetastore
) -> None:
    target = hive_metastore.restore_target
    platform = require_local_platform(
        target.platform, "the Hive-written metastore tier runs on an environment this run creates"
    )
    served = hive_metastore.catalog()
    _kill_service(scenario, platform, target.metastore_service, supervised, 120)
    _finish(scenario, supervised, [hive_metastore.compare_catalog(served)])


def _kill_service(
    scenario: ScenarioRecorder, platform: LocalPlatform, name: str, supervised: bool, timeout: float
) -> None:
    scenario.begin(
        PROCEDURE,
        "platform",
        f"{name} killed",
        RUNBOOK + ("" if supervised else " (no restart)"),
        kind="scenario" if supervised else "negative-control",
    )
    scenario.incident()
    with scenario.journal.step("Kill pod", "kill -9 of the service's process tree") as step:
        if supervised:
            step.detail = platform.kill_and_measure(name, timeout).describe()
        else:
            platform.kill(name)
            step.detail = "killed; nothing restarts it"
    if supervised:
        scenario.restored(None)
    with scenario.journal.step("Collect logs and events", "evidence") as step:
        step.detail = "; ".join(platform.evidence(name))


def _finish(scenario: ScenarioRecorder, supervised: bool, results: list[CheckResult]) -> None:
    verified = scenario.verified(results)
    if not supervised:
        assert not verified
        return
    scenario.measured_rpo(RpoMeasurement(0, None, 0.0))
    scenario.assert_objectives_met()
