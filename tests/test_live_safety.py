"""Not one write where the rails say no. The whole game day runs against live-profiled
targets with a recorder in front of each: S3 behind a recording proxy, PostgreSQL with its
own statement log (``log_statement = 'mod'``), the Kubernetes API emulator's request log.
In each refusing mode (production without confirmation, no ``--dr-allow-destructive``, a
target off the allow-list, a dry run) the recorders must see zero writes; a dry run lists
what it would have done. The control: the same run with destructive actions allowed makes
writes the recorders see."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drtests.environments import Environment
from drtests.fixtures.metastore import MetastoreUnderTest
from fixtures.kubernetes import KubeEmulator
from fixtures.recorder import RecordingProxy, recording_proxy, statement_log

ROOT = Path(__file__).resolve().parents[1]
# the control runs the scenarios that write first thing (a backup, a fault), not all of them
CONTROL_SCENARIOS = (
    "without_restore_verification_fails and sequence or version_restore and delete-prefix"
)


@dataclass
class RecordedTargets:
    """A live profile whose every target has a recorder in front of it."""

    profile_text: str
    s3: RecordingProxy
    log_file: Path
    kube: KubeEmulator
    pg: Environment
    tmp_path: Path

    def profile(self, name: str, *, production: bool = False, on_list: bool = True) -> Path:
        allow = (
            [
                f"postgresql://127.0.0.1:{self.pg.postgres.port}/*",
                f"{self.s3.url}/*",
                "k8s://test/*",
            ]
            if on_list
            else ["postgresql://10.255.0.1:5432/*", "https://s3.elsewhere.example/*"]
        )
        path = self.tmp_path / f"{name}.toml"
        path.write_text(
            self.profile_text.replace("@ALLOW@", ", ".join(f'"{a}"' for a in allow)).replace(
                "@PRODUCTION@", "true" if production else "false"
            )
        )
        return path

    def run(self, profile: Path, *flags: str, select: str | None = None) -> str:
        reports = self.tmp_path / f"reports-{profile.stem}"
        argv = [
            sys.executable,
            "-m",
            "drtests.cli",
            "gameday",
            "--profile",
            str(profile),
            "--report-dir",
            str(reports),
            "-n",
            "1",
            *flags,
        ]
        if select:
            argv += ["-k", select]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
        env["HOME"] = str(self.tmp_path / "home")  # no ~/.kube/config but the profile's
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False
        )
        output = result.stdout + result.stderr
        (self.tmp_path / f"{profile.stem}.out").write_text(output)
        return output


@pytest.fixture
def recorded(
    kube_emulator: KubeEmulator,
    metastore: MetastoreUnderTest,
    dr_environment: Environment,
    tmp_path: Path,
) -> Iterator[RecordedTargets]:
    server = dr_environment.postgres_server
    if server is None:
        pytest.skip("needs a PostgreSQL server this run owns (its statement log)")
    pg, s3 = dr_environment.postgres, dr_environment.s3_primary
    assert s3.endpoint_url is not None
    kubeconfig = kube_emulator.kubeconfig(tmp_path / "kubeconfig")
    (tmp_path / "home").mkdir()
    with recording_proxy(s3.endpoint_url) as proxy:
        text = (
            f'name = "staging"\nenvironment = "live"\nstate_dir = "{tmp_path / "state"}"\n'
            f'[postgres.metastore]\ndsn = "{pg.dsn(metastore.target.database)}"\n'
            f'[s3.primary]\nendpoint_url = "{proxy.url}"\n'
            f'access_key_id = "{s3.access_key_id}"\nsecret_access_key = "{s3.secret_access_key}"\n'
            f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n'
            "[safety]\nallow_list = [@ALLOW@]\nproduction = @PRODUCTION@\n"
        )
        yield RecordedTargets(
            text, proxy, server.base_dir / "server.log", kube_emulator, dr_environment, tmp_path
        )


MODES = {
    "production-unconfirmed": ({"production": True}, ("--allow-destructive",)),
    "not-destructive": ({}, ()),
    "off-the-allow-list": ({"on_list": False}, ("--allow-destructive",)),
    "dry-run": ({}, ("--dry-run", "--allow-destructive")),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_a_refusing_game_day_writes_nothing(recorded: RecordedTargets, mode: str) -> None:
    options, flags = MODES[mode]
    profile = recorded.profile(mode, **options)  # type: ignore[arg-type]
    kube_before = len(recorded.kube.mutating_requests())
    with statement_log(recorded.pg.postgres, recorded.log_file) as log:
        output = recorded.run(profile, *flags)
    assert "Traceback" not in output
    assert recorded.s3.writes() == [], output[-3000:]
    assert log.statements == [], output[-3000:]
    assert recorded.kube.mutating_requests()[kube_before:] == []
    assert len(recorded.s3.requests) > 0, "the run never reached S3: the recorder saw nothing"
    if mode == "dry-run":
        assert "dry-run plan (nothing was written):" in output
        plan = output.split("dry-run plan (nothing was written):", 1)[1]
        assert "would inject fault" in output and "inject fault delete-database-tables" in plan
        assert "write a metastore backup on" in plan
        closing = output.strip().splitlines()[-1]
        assert "failed" not in closing and "error" not in closing, closing
    else:
        assert "refusing to" in output


def test_the_recorders_see_the_writes_of_an_allowed_run(recorded: RecordedTargets) -> None:
    """The control: with destructive actions allowed the same targets are written."""
    profile = recorded.profile("allowed")
    with statement_log(recorded.pg.postgres, recorded.log_file) as log:
        output = recorded.run(profile, "--allow-destructive", select=CONTROL_SCENARIOS)
    assert recorded.s3.writes(), output[-3000:]
    assert log.statements, output[-3000:]


def test_the_statement_log_sees_a_write(recorded: RecordedTargets) -> None:
    from drtests.postgres import connect

    with (
        statement_log(recorded.pg.postgres, recorded.log_file) as log,
        connect(recorded.pg.postgres, "postgres", autocommit=True) as conn,
    ):
        conn.execute("CREATE TEMP TABLE recorder_probe (x int)")
    assert any("recorder_probe" in s for s in log.statements)


def test_read_only_sessions_refuse_writes_at_the_server(recorded: RecordedTargets) -> None:
    """Defence in depth: where the rails allow no write, PostgreSQL sessions of a live
    environment are read-only, so even a write no code path asked the rails about fails."""
    from dataclasses import replace

    import psycopg

    from drtests.config import load_profile
    from drtests.postgres import connect
    from drtests.safety import SafetyRails

    profile = load_profile(recorded.profile("ro"), "live")
    gated = replace(recorded.pg.postgres, gate=SafetyRails(profile))  # no destructive flag
    with (
        connect(gated, "postgres", autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE DATABASE never_created")
    allowed = replace(recorded.pg.postgres, gate=SafetyRails(profile, allow_destructive=True))
    assert not allowed.read_only
    assert gated.tool_env()["PGOPTIONS"] == "-c default_transaction_read_only=on"


def test_the_s3_gate_stops_a_write_no_code_path_asked_about(recorded: RecordedTargets) -> None:
    """The gate sits in the client: a PUT the rails refuse is never sent, a dry run lists
    it, reads pass."""
    from dataclasses import replace

    from drtests.config import load_profile
    from drtests.errors import SafetyError
    from drtests.objectstore import S3Endpoint
    from drtests.safety import DryRunStop, SafetyRails

    profile = load_profile(recorded.profile("gate"), "live")
    plain = S3Endpoint("primary", recorded.s3.url, "us-east-1", "k", "s")
    refused = replace(plain, gate=SafetyRails(profile)).client()
    with pytest.raises(SafetyError, match="destructive actions need"):
        refused.put_object(Bucket="spark-backups", Key="hive-metastore/x.dump", Body=b"x")
    rails = SafetyRails(profile, allow_destructive=True, dry_run=True)
    planned = replace(plain, gate=rails).client()
    with pytest.raises(DryRunStop):
        planned.delete_object(Bucket="spark-data", Key="anything")
    assert rails.plan == [f"S3 DeleteObject anything on {recorded.s3.url}/spark-data"]
    planned.list_objects_v2(Bucket="spark-data")  # a read passes
    assert recorded.s3.writes() == []
    assert ("GET", "/spark-data") in recorded.s3.requests
