"""The command line and the safety rails end to end, against this worker's real servers
addressed through a live profile, as a game day on a real cluster would be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from drtests.environments import Environment
from drtests.fixtures.metastore import MetastoreUnderTest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "without_restore_verification_fails and sequence"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DRTESTS_"))}


def _drtests(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drtests.cli", *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_invalid_profile_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[objectives.hms_full_restore]\nrto_seconds = "soon"\n')
    for args in (("profile", "check", str(bad)), ("gameday", "--profile", str(bad))):
        result = _drtests(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("drtests: error: profile ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_profile_for_the_game_day(tmp_path: Path) -> None:
    result = _drtests("gameday", "--profile", str(tmp_path / "nope.toml"))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"drtests: error: profile {tmp_path / 'nope.toml'}: file not found",
    )


def _scenario(profile: Path, reports: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "drtests/scenarios",
            "-k",
            SCENARIO,
            "-p",
            "no:cacheprovider",
            "-q",
            "--dr-profile",
            str(profile),
            "--dr-report-dir",
            str(reports),
            *flags,
        ],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _evidence_text(reports: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in reports.rglob("*") if p.is_file())


def test_live_target_refused_without_allow_destructive(
    live_profile: tuple[Path, str], metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    before = metastore.baseline()
    result = _scenario(live_profile[0], tmp_path / "reports")
    assert result.returncode == 1
    assert "destructive actions need --dr-allow-destructive" in result.stdout
    assert metastore.baseline() == before


def test_dry_run_prints_the_plan_and_writes_nothing(
    live_profile: tuple[Path, str], metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    before = metastore.baseline()
    result = _scenario(live_profile[0], tmp_path / "reports", "--dr-dry-run")
    assert result.returncode == 0, result.stdout
    assert "dry-run plan (nothing was written):" in result.stdout
    assert "inject fault sequence-behind on postgresql://127.0.0.1:" in result.stdout
    assert metastore.baseline() == before
    assert not (tmp_path / "state" / "fault-ledger.jsonl").exists()


def test_allowed_live_run_reverts_its_fault_and_leaks_no_secret(
    live_profile: tuple[Path, str], metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    profile, password = live_profile
    before = metastore.baseline()
    result = _scenario(profile, tmp_path / "reports", "--dr-allow-destructive")
    assert result.returncode == 0, result.stdout
    assert "control-held" in result.stdout
    assert metastore.baseline() == before, "the fault was not reverted"
    assert password not in result.stdout + result.stderr
    assert password not in _evidence_text(tmp_path / "reports")
    ledger = (tmp_path / "state" / "fault-ledger.jsonl").read_text()
    assert '"event": "reverted"' in ledger and password not in ledger


def test_missed_objective_fails_the_game_day(tmp_path: Path) -> None:
    tight = tmp_path / "tight.toml"
    tight.write_text(
        'name = "tight"\n[objectives.hms_full_restore]\nrto_seconds = 0.01\nrpo_seconds = 3600\n'
    )
    result = _drtests(
        "gameday",
        "--profile",
        str(tight),
        "--report-dir",
        str(tmp_path / "reports"),
        "-n",
        "1",
        "-k",
        "full_restore_from_backup and sequence",
    )
    assert result.returncode == 1, result.stdout
    assert "RTO objective missed" in result.stdout
    assert "DR game day" in result.stdout and "FAILED" in result.stdout
    run_dir = next((tmp_path / "reports").glob("*/run.json")).parent
    assert '"verdict": "failed"' in (run_dir / "run.json").read_text()
    for name in ("report.html", "report.pdf", "summary.md", "junit.xml", "allure-results"):
        assert (run_dir / name).exists(), name
    assert "objective missed" in (run_dir / "summary.md").read_text()
    verified = _drtests("report", "verify", str(run_dir))
    assert verified.returncode == 0 and "intact" in verified.stdout


def test_metastore_repair_from_the_command_line(
    live_profile: tuple[Path, str], metastore: MetastoreUnderTest
) -> None:
    """Option 3 as an operator runs it: check, dry run, refusal, repair, MSCK, clean."""
    from drtests.faults import HalfDroppedPartitions, SequenceBehind
    from drtests.metastore.verify import partition_inventory

    profile = str(live_profile[0])
    assert _drtests("metastore", "check", "--profile", profile).returncode == 0
    with metastore.connect() as conn:
        partitions = partition_inventory(conn)
    SequenceBehind().inject(metastore.target)
    HalfDroppedPartitions("analytics", "events", count=4).inject(metastore.target)
    before = metastore.baseline()

    checked = _drtests("metastore", "check", "--profile", profile)
    assert checked.returncode == 1 and "FAILED  sequence_counters" in checked.stdout
    dry = _drtests("metastore", "check", "--repair", "--dry-run", "--profile", profile)
    assert "would repair: 1 sequences, 4 leaked storage descriptors" in dry.stdout
    assert metastore.baseline() == before, "a dry run wrote"
    refused = _drtests("metastore", "check", "--repair", "--profile", profile)
    assert refused.returncode == 3 and "--dr-allow-destructive" not in refused.stderr
    assert "destructive actions need" in refused.stderr

    assert (
        _drtests(
            "metastore", "check", "--repair", "--allow-destructive", "--profile", profile
        ).returncode
        == 1
    )  # partitions still missing
    plan = _drtests("metastore", "msck", "analytics.events", "--dry-run", "--profile", profile)
    assert "would add 4, would drop 0 partitions" in plan.stdout
    added = _drtests(
        "metastore", "msck", "analytics.events", "--allow-destructive", "--profile", profile
    )
    assert "added 4" in added.stdout, added.stdout + added.stderr
    assert _drtests("metastore", "check", "--profile", profile).returncode == 0
    with metastore.connect() as conn:
        assert partition_inventory(conn) == partitions


def _doctor_profile(live_profile: tuple[Path, str], tmp_path: Path, **overrides: str) -> Path:
    path, _ = live_profile
    text = path.read_text()
    for old, new in overrides.items():
        text = text.replace(old, new)
    text += f'[metastore]\nbackup_prefix = "doctor-{tmp_path.name}/"\n'
    doctor = tmp_path / "doctor.toml"
    doctor.write_text(text)
    return doctor


def test_doctor_says_no_go_without_a_backup_then_go(
    live_profile: tuple[Path, str],
    metastore: MetastoreUnderTest,
    dr_environment: Environment,
    tmp_path: Path,
) -> None:
    from drtests.backups import BackupCatalog

    profile = _doctor_profile(live_profile, tmp_path)
    first = _drtests("doctor", "--profile", str(profile))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "FAILED  backup_fresh" in first.stdout and "no backup at all" in first.stdout
    assert first.stdout.rstrip().endswith("NO-GO: fix the failing checks first")

    catalog = BackupCatalog(dr_environment.s3_primary, "spark-backups", f"doctor-{tmp_path.name}/")
    catalog.create(metastore.target.endpoint, metastore.target.database)
    second = _drtests("doctor", "--profile", str(profile))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ok      newest_backup_verifies" in second.stdout
    assert second.stdout.rstrip().endswith("GO: ready for the game day")
    assert live_profile[1] not in first.stdout + first.stderr + second.stdout + second.stderr


def test_doctor_with_a_wrong_password_names_the_endpoint(
    live_profile: tuple[Path, str], tmp_path: Path
) -> None:
    password = live_profile[1]
    profile = _doctor_profile(live_profile, tmp_path, **{f":{password}@": ":wrong-password@"})
    result = _drtests("doctor", "--profile", str(profile))
    assert result.returncode == 1
    assert "FAILED  postgres_ready: PostgreSQL 127.0.0.1" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "wrong-password" not in result.stdout + result.stderr


def test_metastore_check_against_a_recorded_baseline(
    live_profile: tuple[Path, str], metastore: MetastoreUnderTest, tmp_path: Path
) -> None:
    """Outside a game day the count, content and schema checks need a baseline: without
    one they say "not run" (never "passed"); with one they fail on a lost table."""
    from drtests.faults import DeleteDatabaseTables

    profile = str(live_profile[0])
    plain = _drtests("metastore", "check", "--profile", profile)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "not run table_count_per_database: no baseline" in plain.stdout
    assert "not run objects_match_baseline: no baseline" in plain.stdout
    assert "4 not run" in plain.stdout

    baseline = tmp_path / "baselines" / "metastore.json"
    recorded = _drtests("metastore", "baseline", "--out", str(baseline), "--profile", profile)
    assert recorded.returncode == 0 and "tables" in recorded.stdout, recorded.stderr
    assert live_profile[1] not in baseline.read_text(), "the baseline holds the password"
    clean = _drtests("metastore", "check", "--baseline", str(baseline), "--profile", profile)
    assert clean.returncode == 0 and "not run" not in clean.stdout, clean.stdout

    DeleteDatabaseTables("production_critical").inject(metastore.target)
    broken = _drtests("metastore", "check", "--baseline", str(baseline), "--profile", profile)
    assert broken.returncode == 1
    assert "FAILED  table_count_per_database" in broken.stdout
    assert "FAILED  fingerprints_match_baseline" in broken.stdout
    assert "table production_critical.fact_table: missing" in broken.stdout

    baseline.write_bytes(b"\xff\xfe not text")
    garbled = _drtests("metastore", "check", "--baseline", str(baseline), "--profile", profile)
    assert garbled.returncode == 2 and "not UTF-8 text" in garbled.stderr
    assert "Traceback" not in garbled.stderr

    baseline.write_text('{"format": "something else"}')
    wrong = _drtests("metastore", "check", "--baseline", str(baseline), "--profile", profile)
    assert wrong.returncode == 2 and "not a drtests metastore baseline" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_every_option_has_help_and_the_plugins_spelling_works_too() -> None:
    import argparse

    from drtests.cli import build_parser

    parser = build_parser()
    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not action.help and action.dest != "help":
                missing.append(f"{path} {action.option_strings or action.dest}")

    walk(parser, "drtests")
    assert missing == []
    ours = parser.parse_known_args(["gameday", "--dry-run", "--participant", "Jo:IC"])[0]
    theirs = parser.parse_known_args(["gameday", "--dr-dry-run", "--dr-participant", "Jo:IC"])[0]
    assert ours.dry_run and theirs.dry_run
    assert ours.participant == theirs.participant == ["Jo:IC"]
