"""Profiles: the built-in local one, and clear one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtests.config import load_profile, local_profile
from drtests.errors import ProfileError


def test_local_profile_carries_the_runbook_objectives() -> None:
    objective = local_profile().objective("hms_full_restore")
    assert (objective.rto_seconds, objective.rpo_seconds) == (1800, 3600)


def test_unknown_procedure_names_the_missing_section() -> None:
    with pytest.raises(ProfileError, match=r"\[objectives.kafka_restore\]"):
        local_profile().objective("kafka_restore")


LIVE = """
name = "prod-eu"
environment = "live"
[postgres.metastore]
dsn = "postgresql://hive:s3cr3t-pw@db.internal:5432/metastore"
[s3.primary]
endpoint_url = "https://minio.internal"
access_key_id = "AKIAEXAMPLE"
secret_access_key = "very-secret-key"
[safety]
allow_list = ["postgresql://db.internal:5432/*"]
production = true
[objectives.hms_full_restore]
rto_seconds = 900
rpo_seconds = 1800
"""


def test_live_profile_loads_with_its_objectives_and_secrets(tmp_path: Path) -> None:
    path = tmp_path / "prod.toml"
    path.write_text(LIVE)
    profile = load_profile(path)
    assert profile.objective("hms_full_restore").rto_seconds == 900
    assert {"s3cr3t-pw", "very-secret-key", "AKIAEXAMPLE"} <= set(profile.secrets())
    assert "s3cr3t-pw" not in repr(profile)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name = [", "not valid TOML"),
        ('name = "x"\nenviroment = "live"', "enviroment: Extra inputs are not permitted"),
        ('name = "x"\nenvironment = "cloud"', "environment: Input should be"),
        (
            'name = "x"\n[objectives.hms_full_restore]\nrto_seconds = -5\nrpo_seconds = 1',
            "objectives.hms_full_restore.rto_seconds",
        ),
        ('name = "x"\n[postgres.metastore]\ndsn = "mysql://h/db"', "must be a postgresql:// URI"),
        ('name = "x"\nenvironment = "live"', r"live mode needs \[postgres.metastore\]"),
    ],
)
def test_invalid_profiles_give_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ProfileError, match=message) as info:
        load_profile(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="file not found"):
        load_profile(tmp_path / "nope.toml")
