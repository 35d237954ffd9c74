"""What a staged backup must be before it may replace a component's database: the tables
the application cannot run without, and a schema version the installed application runs
on. Each builder returns an :data:`~drtests.procedures.staging.Identify` for one component;
anything else is an :class:`IncompatibleBackup` naming what was found instead."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from drtests.errors import IncompatibleBackup
from drtests.metastore.schema import REQUIRED_TABLES, SUPPORTED_VERSIONS, schema_version
from drtests.postgres import PostgresEndpoint, connect, public_tables

AIRFLOW_TABLES = ("alembic_version", "dag", "dag_run", "task_instance", "serialized_dag")
MLFLOW_TABLES = ("alembic_version", "experiments", "runs", "metrics", "params")


def _require_tables(conn: psycopg.Connection[Any], what: str, required: Iterable[str]) -> int:
    found = public_tables(conn)
    missing = [t for t in required if t not in found]
    if missing:
        sample = ", ".join(sorted(found)[:6]) or "no tables"
        raise IncompatibleBackup(
            f"not {'an' if what[0] in 'AEIOM' else 'a'} {what} database: {len(missing)} of its "
            "tables missing "
            f"({', '.join(missing[:4])}{', …' if len(missing) > 4 else ''}); it holds {sample}"
            f"{' …' if len(found) > 6 else ''}"
        )
    return len(found)


def _alembic_revision(conn: psycopg.Connection[Any], what: str) -> str:
    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    if len(rows) != 1:
        raise IncompatibleBackup(f"{what} alembic_version holds {len(rows)} rows, not one")
    return str(rows[0][0])


def metastore_identity(expected_versions: tuple[str, ...]) -> Callable[[Any], str]:
    """A Hive metastore: schematool's required tables and one ``VERSION`` row naming a
    schema version in ``expected_versions`` (what the running HMS runs on)."""

    def identify(conn: psycopg.Connection[Any]) -> str:
        count = _require_tables(conn, "Hive metastore", REQUIRED_TABLES)
        rows = conn.execute('SELECT "SCHEMA_VERSION" FROM "VERSION"').fetchall()
        if len(rows) != 1:
            raise IncompatibleBackup(f"metastore VERSION holds {len(rows)} rows, not one")
        version = str(rows[0][0])
        if version not in expected_versions:
            raise IncompatibleBackup(
                f"metastore schema {version}; the running metastore expects "
                f"{' or '.join(expected_versions)}"
            )
        dbs, tbls = conn.execute(
            'SELECT (SELECT count(*) FROM "DBS"), (SELECT count(*) FROM "TBLS")'
        ).fetchone() or (0, 0)
        if not dbs:
            raise IncompatibleBackup(
                "an empty metastore: no database, not even 'default' (HMS creates it first)"
            )
        return f"Hive metastore schema {version}: {count} tables; {dbs} databases, {tbls} tables"

    return identify


def running_metastore_versions(pg: PostgresEndpoint, database: str) -> tuple[str, ...]:
    """The schema version the live metastore runs on, from its own VERSION row; every
    supported version when that row is gone or unreadable (the damage being restored)."""
    try:
        with connect(pg, database) as conn:
            version = schema_version(conn)
    except psycopg.Error:
        return SUPPORTED_VERSIONS
    return (version,) if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS


def alembic_identity(
    what: str,
    required: tuple[str, ...],
    heads: tuple[str, ...] | None,
    never_empty: str | None = None,
) -> Callable[[Any], str]:
    """An application migrated by alembic (Airflow, MLflow): its tables, and a revision
    among ``heads`` (the installed version's; ``None`` when it cannot be known);
    ``never_empty`` names a table the application never leaves without rows."""

    def identify(conn: psycopg.Connection[Any]) -> str:
        count = _require_tables(conn, what, required)
        if never_empty is not None:
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(never_empty))
            row = conn.execute(query).fetchone()
            if not row or not row[0]:
                raise IncompatibleBackup(f"an empty {what} database: {never_empty} has no row")
        revision = _alembic_revision(conn, what)
        if heads is not None and revision not in heads:
            raise IncompatibleBackup(
                f"{what} migration {revision}; the installed {what} expects "
                f"{', '.join(heads)}. Restore it with the version that wrote it, then upgrade"
            )
        return f"{what} database at migration {revision}: {count} tables"

    return identify


def mlflow_heads(pg: PostgresEndpoint, database: str) -> tuple[str, ...] | None:
    """The migrations an MLflow backup may be at: the one the live backend store is at (what
    the running server uses, whatever MLflow is installed beside the suite) and the newest
    of the MLflow installed here; None when neither can be known."""
    heads: list[str] = []
    try:
        with connect(pg, database) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        heads += [str(r[0]) for r in rows[:1]]
    except psycopg.Error:
        pass  # the damage being restored
    try:
        from mlflow.store.db.utils import _get_latest_schema_revision

        heads.append(str(_get_latest_schema_revision()))
    except ImportError:
        pass
    return tuple(dict.fromkeys(heads)) or None
