"""Faults on any PostgreSQL database of the platform (the metastore's, Airflow's, MLflow's):
the target they act on, and the mechanics the application faults share.

The shared faults take a pg_dump of the database before they break it; that dump is their
undo record. A revert first asks whether the damage is still there, so after a good restore
it changes nothing, and otherwise rebuilds the database from the dump.
"""

from __future__ import annotations

import os
import uuid
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drtests.faults.base import Fault, RevertIncomplete, require
from drtests.postgres import (
    PostgresEndpoint,
    check_dump_readable,
    connect,
    database_exists,
    drop_database,
    dump_database,
    replace_database,
    write_despite_lock_conflicts,
)


@dataclass(frozen=True)
class DatabaseTarget:
    """The database a fault acts on; ``describe`` never includes the password. ``component``
    names its ``[postgres.<component>]`` profile entry, so the next run can revert it."""

    endpoint: PostgresEndpoint
    database: str
    environment: str
    workdir: Path
    component: str = "metastore"

    def describe(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "environment": self.environment,
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "database": self.database,
        }

    def safety_name(self) -> str:
        return f"postgresql://{self.endpoint.host}:{self.endpoint.port}/{self.database}"

    def connect(self) -> psycopg.Connection[Any]:
        return connect(self.endpoint, self.database, autocommit=True)


def undo_dump(target: DatabaseTarget, label: str) -> Path:
    """A dump of the whole database, taken before a fault, readable by its owner only (it
    holds the database's data) in a folder only the owner may enter."""
    folder = target.workdir / "undo"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    snapshot = folder / f"fault-undo-{target.database}-{label}-{uuid.uuid4().hex[:8]}.dump"
    old_umask = os.umask(0o077)
    try:
        dump_database(target.endpoint, target.database, snapshot)
    finally:
        os.umask(old_umask)
    snapshot.chmod(0o600)
    return snapshot


class DumpUndoFault(Fault[DatabaseTarget]):
    """A fault whose undo record is a dump of the database taken just before it."""

    @abstractmethod
    def measure(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        """Read, before the damage, what :meth:`still_broken` compares against."""

    @abstractmethod
    def damage(self, conn: psycopg.Connection[Any]) -> None:
        """Break the database, inside the transaction :meth:`apply` opens (and may repeat
        when it loses a lock conflict with the platform's own sessions)."""

    @abstractmethod
    def still_broken(self, conn: psycopg.Connection[Any], undo: dict[str, Any]) -> bool: ...

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            measured = self.measure(conn)
        return {"snapshot": str(undo_dump(target, self.kind)), **measured}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn:
            write_despite_lock_conflicts(conn, self.damage)

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        with target.connect() as conn:
            if not self.still_broken(conn, undo):
                return "no damage left; nothing to do"
        require(undo, "snapshot")
        snapshot = Path(undo["snapshot"])
        if not snapshot.is_file():
            raise RevertIncomplete(f"the undo dump {snapshot} is gone: nothing reverted")
        check_dump_readable(target.endpoint, snapshot)
        replace_database(target.endpoint, target.database, snapshot)
        return f"rebuilt {target.database} from {snapshot.name}"


def _table_exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _count(conn: psycopg.Connection[Any], table: str, column: str | None, value: Any) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    params: tuple[Any, ...] = ()
    if column is not None:
        query += sql.SQL(" WHERE {} = %s").format(sql.Identifier(column))
        params = (value,)
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


class DeleteRows(DumpUndoFault):
    """DELETE of the rows whose ``column`` equals ``value``; foreign keys cascade as the
    application's own deletes would, unless ``bypass_constraints`` (a hand-made delete
    that leaves children dangling)."""

    table: str
    column: str

    def __init__(self, value: str, bypass_constraints: bool = False) -> None:
        self.value = value
        self.bypass_constraints = bypass_constraints

    def describe(self) -> str:
        how = " bypassing foreign keys" if self.bypass_constraints else ""
        return f"delete the {self.table} rows where {self.column} = {self.value!r}{how}"

    def measure(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        rows = _count(conn, self.table, self.column, self.value)
        if not rows:
            raise ValueError(f"no {self.table} row where {self.column} = {self.value!r}")
        return {"deleted": rows}

    def damage(self, conn: psycopg.Connection[Any]) -> None:
        if self.bypass_constraints:
            conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                sql.Identifier(self.table), sql.Identifier(self.column)
            ),
            (self.value,),
        )

    def still_broken(self, conn: psycopg.Connection[Any], undo: dict[str, Any]) -> bool:
        if not _table_exists(conn, self.table):
            return True
        return _count(conn, self.table, self.column, self.value) < int(undo.get("deleted", 0))


class DropTable(DumpUndoFault):
    """DROP TABLE … CASCADE: the table and every constraint pointing at it gone."""

    def __init__(self, table: str) -> None:
        self.table = table

    def describe(self) -> str:
        return f"drop table {self.table} (CASCADE)"

    def measure(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        return {}

    def damage(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(self.table)))

    def still_broken(self, conn: psycopg.Connection[Any], undo: dict[str, Any]) -> bool:
        return not _table_exists(conn, self.table)


class TruncateTable(DumpUndoFault):
    """TRUNCATE … CASCADE: the table and every table referencing it emptied."""

    def __init__(self, table: str) -> None:
        self.table = table

    def describe(self) -> str:
        return f"truncate table {self.table} (CASCADE)"

    def measure(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        return {"rows": _count(conn, self.table, None, None)}

    def damage(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.Identifier(self.table)))

    def still_broken(self, conn: psycopg.Connection[Any], undo: dict[str, Any]) -> bool:
        if not _table_exists(conn, self.table):
            return True
        return _count(conn, self.table, None, None) < int(undo.get("rows", 0))


class SetAlembicVersion(Fault[DatabaseTarget]):
    """alembic_version set to another revision: the schema claims a version it is not, as a
    restore from another application version leaves it. Reverted by setting it back."""

    def __init__(self, to_revision: str) -> None:
        self.to_revision = to_revision

    def describe(self) -> str:
        return f"set alembic_version to revision {self.to_revision}"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if row is None:
                raise ValueError(f"{target.database} has no alembic_version row")
        return {"previous": row[0]}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn:
            write_despite_lock_conflicts(
                conn,
                lambda c: c.execute(
                    "UPDATE alembic_version SET version_num = %s", (self.to_revision,)
                ),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "previous")
        with target.connect() as conn:
            cur = conn.execute(
                "UPDATE alembic_version SET version_num = %s WHERE version_num = %s",
                (undo["previous"], self.to_revision),
            )
        return f"alembic_version {'set back' if cur.rowcount else 'already restored'}"


class WorkDatabase(Fault[DatabaseTarget]):
    """A staging, scratch or retired copy a restore procedure creates beside the live
    database. Ledgered before it exists, so a run killed mid-restore leaves the next run
    the name to drop; only a name derived from the live database's is ever dropped."""

    kind = "work-database"
    detected_by = ()

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> str:
        return f"work database {self.name} of a restore procedure"

    def _check_name(self, target: DatabaseTarget) -> None:
        if not self.name.startswith(f"{target.database}__"):
            raise RevertIncomplete(
                f"{self.name} is not a work database of {target.database}: left alone"
            )

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        self._check_name(target)
        return {}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        """Nothing: the procedure creates the database itself."""

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        self._check_name(target)
        if not database_exists(target.endpoint, self.name):
            return f"{self.name} already gone"
        drop_database(target.endpoint, self.name)
        return f"dropped {self.name}"
