"""This project's fixtures; drtests' own (``dr``, ``dr_environment``, ``scenario``,
``inject_fault``) come with the installed plugin."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from offsets_dr import store

from drtests.api import (
    BackupCatalog,
    DatabaseTarget,
    DRSession,
    Environment,
    connect,
    create_database,
    drop_database,
)

_numbers = itertools.count(1)


@pytest.fixture
def offsets(dr_environment: Environment, tmp_path: Path) -> Iterator[DatabaseTarget]:
    """A seeded offsets store of this scenario's own, on the run's PostgreSQL."""
    if not dr_environment.owned:
        pytest.skip("the offsets scenarios seed a store of their own: local or containers")
    pg = dr_environment.postgres
    database = f"stream_offsets_{next(_numbers):03d}"
    create_database(pg, database)
    with connect(pg, database, autocommit=True) as conn:
        store.create(conn)
    try:
        yield DatabaseTarget(pg, database, dr_environment.kind, tmp_path, "offsets")
    finally:
        drop_database(pg, database)


@pytest.fixture
def offsets_backups(dr: DRSession, dr_environment: Environment) -> BackupCatalog:
    return BackupCatalog(
        dr_environment.s3_primary, dr.profile.buckets.backups, "offsets/", "stream-offsets"
    )
