"""A run killed (SIGKILL) at any step of a fault's injection loses nothing: before the
capture, after it, in the middle of the damage, after the damage. The run kills itself at
the named point (``DRTESTS_KILL_AT``), then ``drtests ledger revert`` (what the next run
does first) must leave the target exactly as it was: schema dump and every table's sorted
content for PostgreSQL, every current object's bytes for S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drtests.environments import Environment
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.ledger import FaultLedger
from drtests.objectstore.integrity import take_inventory
from drtests.postgres import connect, databases_like, table_fingerprints
from drtests.procedures.database import SAFETY_SUFFIX
from drtests.results import failed
from fixtures.kube_controllers import runbook_workloads
from fixtures.kubernetes import KubeEmulator

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POINTS = ("after-begin", "after-capture", "mid-damage", "after-damage")
NAMESPACE = "spark-operations"  # the profile's default [services] namespace


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    return {**env, **extra}


def _image(metastore: MetastoreUnderTest) -> tuple[str, dict[str, object]]:
    """The database as a restore would have to reproduce it: schema and sorted content."""
    target = metastore.target
    schema = subprocess.run(
        [
            target.endpoint.tool("pg_dump"),
            "--schema-only",
            *target.endpoint.tool_args(target.database),
        ],
        env=target.endpoint.tool_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump 17.6+ fences its output with a random \restrict key
    schema = "\n".join(
        line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )
    with connect(target.endpoint, target.database) as conn:
        return schema, dict(table_fingerprints(conn))


def _killed_then_reverted(profile: Path, select: str, point: str) -> str:
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "drtests/scenarios",
            "-k",
            select,
            "-p",
            "no:cacheprovider",
            "-q",
            "--dr-profile",
            str(profile),
            "--dr-report-dir",
            str(profile.parent / "reports"),
            "--dr-allow-destructive",
        ],
        cwd=ROOT,
        env=_env(DRTESTS_KILL_AT=point),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    reverted = subprocess.run(
        [
            sys.executable,
            "-m",
            "drtests.cli",
            "ledger",
            "revert",
            "--profile",
            str(profile),
            "--allow-destructive",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reverted.returncode == 0, reverted.stdout + reverted.stderr
    return reverted.stdout


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("fault", ["delete-database-tables", "drop-metastore-schema"])
def test_a_metastore_fault_killed_at_any_step_is_undone_exactly(
    fault: str,
    point: str,
    live_profile: tuple[Path, str],
    metastore: MetastoreUnderTest,
) -> None:
    before = _image(metastore)
    said = _killed_then_reverted(
        live_profile[0], f"without_restore_verification_fails and {fault}", point
    )
    assert _image(metastore) == before, said
    ledger = FaultLedger(live_profile[0].parent / "state" / "fault-ledger.jsonl")
    assert ledger.pending() == []
    if point == "after-begin":
        assert "stopped before it changed anything" in said
    else:
        assert "reverted" in said
    undo = live_profile[0].parent / "state" / "undo"
    assert not undo.exists() or not any(undo.iterdir()), "the undo dump was left behind"


@pytest.mark.parametrize("point", POINTS)
def test_an_s3_fault_killed_at_any_step_is_undone_exactly(
    point: str,
    live_profile: tuple[Path, str],
    dr_environment: Environment,
    tmp_path: Path,
) -> None:
    profile = tmp_path / "with-s3.toml"
    s3 = dr_environment.s3_primary
    profile.write_text(
        live_profile[0]
        .read_text()
        .replace("allow_list = [", f'allow_list = ["{s3.describe()}/*", ')
    )
    client = s3.client()
    bucket = "spark-data"
    before = take_inventory(client, bucket, "")
    said = _killed_then_reverted(profile, "version_restore and s3-delete-prefix", point)
    after = take_inventory(client, bucket, "")
    assert after == before, said
    assert FaultLedger(live_profile[0].parent / "state" / "fault-ledger.jsonl").pending() == []


@pytest.mark.parametrize("point", ["after-scale-down", "mid-staging", "mid-restore"])
def test_a_restore_killed_after_scaling_down_leaves_the_replicas_to_the_next_run(
    point: str,
    kube_emulator: KubeEmulator,
    live_profile: tuple[Path, str],
    metastore: MetastoreUnderTest,
    dr_environment: Environment,
    tmp_path: Path,
) -> None:
    """Option 1 on a live Kubernetes namespace, killed once a workload is at 0 (or in the
    middle of the database restore): the next run scales every workload back to its count
    and puts the fault's damage back; a staging or retired database it created is dropped,
    only the safety snapshot kept. (The scenario itself commits changes before its fault,
    the steady workload whose loss the RPO measures: the tables the fault breaks, and every
    consistency check, are what must be as before.)"""
    api = client.ApiClient(client.Configuration(host=kube_emulator.url))
    controllers = runbook_workloads(api, NAMESPACE)
    try:
        kubeconfig = kube_emulator.kubeconfig(tmp_path / "kubeconfig")
        profile = tmp_path / "with-k8s.toml"
        profile.write_text(
            live_profile[0]
            .read_text()
            .replace(
                "allow_list = [",
                f'allow_list = ["k8s://test/*", "{dr_environment.s3_primary.describe()}/*", ',
            )
            + f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n'
        )
        before = _image(metastore)[1]
        replicas = _replicas(api)
        said = _killed_then_reverted(
            profile, "full_restore_from_backup and delete-database-tables", point
        )
        assert _replicas(api) == replicas, said
        assert "scaled back to" in said
        after = _image(metastore)[1]
        assert {t: after[t] for t in ("TBLS", "DBS")} == {t: before[t] for t in ("TBLS", "DBS")}
        assert not failed(metastore.detect(metastore.baseline())), said
        left = databases_like(metastore.target.endpoint, f"{metastore.target.database}__%")
        assert [d for d in left if SAFETY_SUFFIX not in d] == [], said
    finally:
        controllers.close()


def _replicas(api: client.ApiClient) -> dict[str, int]:
    apps = client.AppsV1Api(api)
    found = {
        d.metadata.name: d.spec.replicas for d in apps.list_namespaced_deployment(NAMESPACE).items
    }
    found.update(
        {
            s.metadata.name: s.spec.replicas
            for s in apps.list_namespaced_stateful_set(NAMESPACE).items
        }
    )
    return found
