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


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://hive:pw@db:notaport/metastore", "is not a valid URI"),
        ("postgresql://hive:pw@db:99999/metastore", "is not a valid URI"),
        ("postgresql://hive:pw@[::1/metastore", "is not a valid URI"),
        ("postgresql://hive:pw@db:5432", "names no database"),
        ("postgresql://", "names no host"),
    ],
)
def test_a_dsn_that_cannot_be_used_is_refused_at_load(
    tmp_path: Path, dsn: str, message: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\nenvironment = "live"\n[postgres.metastore]\ndsn = "{dsn}"\n')
    with pytest.raises(ProfileError, match=message) as raised:
        load_profile(path)
    assert "pw@" not in str(raised.value)


def test_a_dsn_keeps_its_encoded_password_and_its_options() -> None:
    from drtests.postgres import PostgresEndpoint

    endpoint, database = PostgresEndpoint.from_dsn(
        "postgresql://hive:Zebra%40Quux%2F9931@db.example:6432/meta%2Dstore?sslmode=require",
        Path("/usr/bin"),
    )
    assert (endpoint.password, database) == ("Zebra@Quux/9931", "meta-store")
    assert endpoint.dsn(database).endswith("@db.example:6432/meta-store?sslmode=require")
    assert "Zebra%40Quux%2F9931" in endpoint.dsn(database)
    assert endpoint.tool_env()["PGSSLMODE"] == "require"


@pytest.mark.parametrize("scratch", ["hive-metastore/", "hive-metastore/scratch", "/", ""])
def test_a_scratch_prefix_must_hold_no_real_backup(tmp_path: Path, scratch: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\n[safety]\nscratch_prefix = "{scratch}"\n')
    with pytest.raises(ProfileError, match="scratch_prefix"):
        load_profile(path)
