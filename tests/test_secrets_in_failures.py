"""No secret in any output, even when everything fails: a live profile with a distinctive
PostgreSQL password, S3 access key and secret key, each endpoint unreachable in turn, run
with pytest's ``-l`` (every frame's locals) and long tracebacks, and doctor; stdout,
stderr, every report file and the state folder are searched for the secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from drtests.environments import Environment
from drtests.fixtures.metastore import MetastoreUnderTest
from drtests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Pg-Planted-Secret-7f3a9"
ACCESS_KEY = "AKIAPLANTED7F3A9KEY"
SECRET_KEY = "s3-planted-secret-7f3a9/Zq"
SCENARIOS = (
    "(full_restore_from_backup and delete-database-tables) or "
    "(version_restore and delete-prefix) or (without_restore_verification_fails and sequence)"
)


def _profile(tmp_path: Path, pg_port: int, s3_url: str, database: str) -> Path:
    path = tmp_path / "planted.toml"
    path.write_text(
        f'name = "staging"\nenvironment = "live"\nstate_dir = "{tmp_path / "state"}"\n'
        "[postgres.metastore]\n"
        f'dsn = "postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_port}/{database}"\n'
        f'[s3.primary]\nendpoint_url = "{s3_url}"\n'
        f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
        "[kubernetes]\nenabled = false\n"
        f'[safety]\nallow_list = ["postgresql://127.0.0.1:{pg_port}/*", "{s3_url}/*"]\n'
    )
    return path


def _run(*argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    return result.stdout + result.stderr


def _leaks(texts: list[str], folders: list[Path]) -> list[str]:
    found = [f"output: {s}" for s in (PASSWORD, ACCESS_KEY, SECRET_KEY) for t in texts if s in t]
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file():
                data = path.read_bytes()
                found += [
                    f"{path}: {s}" for s in (PASSWORD, ACCESS_KEY, SECRET_KEY) if s.encode() in data
                ]
    return found


@pytest.mark.parametrize("unreachable", ["postgresql", "s3"])
def test_no_secret_when_an_endpoint_is_unreachable(
    unreachable: str,
    metastore: MetastoreUnderTest,
    dr_environment: Environment,
    tmp_path: Path,
) -> None:
    s3_url = dr_environment.s3_primary.endpoint_url or ""
    pg_port = dr_environment.postgres.port
    if unreachable == "postgresql":
        pg_port = free_port()
    else:
        s3_url = f"http://127.0.0.1:{free_port()}"
    profile = _profile(tmp_path, pg_port, s3_url, metastore.target.database)
    reports = tmp_path / "reports"
    outputs = [
        _run(
            "-m",
            "pytest",
            "drtests/scenarios",
            "-k",
            SCENARIOS,
            "-p",
            "no:cacheprovider",
            "-l",
            "--tb=long",
            "--dr-profile",
            str(profile),
            "--dr-report-dir",
            str(reports),
            "--dr-allow-destructive",
        ),
        _run("-m", "drtests.cli", "doctor", "--profile", str(profile)),
        _run("-m", "drtests.cli", "ledger", "revert", "--profile", str(profile)),
    ]
    assert "unreachable" in outputs[0] or "refused" in outputs[0], outputs[0][-3000:]
    assert _leaks(outputs, [reports, tmp_path / "state"]) == []
