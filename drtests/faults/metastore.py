"""Metastore faults: break the HMS database the way incidents do, and undo it exactly.

Each fault captures what it changes (its undo record, kept in the ledger) so that its revert
puts back only what is still broken; after a good restore, a revert changes nothing. Faults
that must leave dangling ids bypass the foreign-key triggers with
``session_replication_role = replica`` (superuser), as a half-applied restore would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drtests.faults.base import Fault, RevertIncomplete, require
from drtests.faults.database import DatabaseTarget, undo_dump
from drtests.killpoints import kill_point
from drtests.metastore.schema import REQUIRED_TABLES, SEQUENCE_PREFIX
from drtests.postgres import check_dump_readable, replace_database, write_despite_lock_conflicts


def _bypass_fks(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET session_replication_role = replica")


def _db_id(conn: psycopg.Connection[Any], database: str) -> int:
    row = conn.execute('SELECT "DB_ID" FROM "DBS" WHERE "NAME" = %s', (database,)).fetchone()
    if row is None:
        raise ValueError(f"metastore has no database {database!r}")
    return int(row[0])


def _table_id(conn: psycopg.Connection[Any], database: str, table: str) -> int:
    row = conn.execute(
        'SELECT t."TBL_ID" FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        'WHERE d."NAME" = %s AND t."TBL_NAME" = %s',
        (database, table),
    ).fetchone()
    if row is None:
        raise ValueError(f"metastore has no table {database}.{table}")
    return int(row[0])


class DeleteDatabaseTables(Fault[DatabaseTarget]):
    """DELETE FROM "TBLS" for one database: the tables vanish, their children dangle."""

    kind = "delete-database-tables"
    detected_by = (
        "table_count_per_database",
        "orphaned_partitions",
        "dangling_references",
        "s3_paths_registered",
    )

    def __init__(self, database: str, table: str | None = None) -> None:
        self.database = database
        self.table = table

    def describe(self) -> str:
        if self.table:
            return f'delete the "TBLS" row of {self.database}.{self.table}'
        return f'delete the "TBLS" rows of database {self.database}'

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            rows = conn.execute(
                'SELECT row_to_json(t)::text FROM "TBLS" t '
                'WHERE "DB_ID" = %s AND (%s::text IS NULL OR "TBL_NAME" = %s) ORDER BY "TBL_ID"',
                (_db_id(conn, self.database), self.table, self.table),
            ).fetchall()
        return {"rows": [json.loads(r[0]) for r in rows]}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn, conn.transaction():
            _bypass_fks(conn)
            conn.execute(
                'DELETE FROM "TBLS" WHERE "TBL_ID" = ANY(%s)',
                ([r["TBL_ID"] for r in undo["rows"]],),
            )
            kill_point("mid-damage")

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        """Put back the rows whose table is missing; a table a restore brought back (maybe
        under a new id) is left as it is."""
        require(undo, "rows")
        names = [[r["DB_ID"], r["TBL_NAME"]] for r in undo["rows"]]
        with target.connect() as conn, conn.transaction():
            _bypass_fks(conn)
            cur = conn.execute(
                'INSERT INTO "TBLS" SELECT * FROM json_populate_recordset(NULL::"TBLS", %s) '
                "ON CONFLICT DO NOTHING",
                (json.dumps(undo["rows"]),),
            )
            row = conn.execute(
                'SELECT count(*) FROM json_to_recordset(%s) AS w("DB_ID" bigint, "TBL_NAME" text) '
                'WHERE NOT EXISTS (SELECT 1 FROM "TBLS" t '
                'WHERE t."DB_ID" = w."DB_ID" AND t."TBL_NAME" = w."TBL_NAME")',
                (json.dumps([{"DB_ID": d, "TBL_NAME": n} for d, n in names]),),
            ).fetchone()
        missing = int(row[0]) if row else 0
        if missing:
            raise RevertIncomplete(f"{missing} of {len(names)} tables still missing from TBLS")
        return f"re-inserted {cur.rowcount} of {len(names)} TBLS rows (the rest were present)"


class BlankStorageLocations(Fault[DatabaseTarget]):
    """A table's storage descriptor loses its LOCATION (NULL), its partitions' become ''."""

    kind = "blank-storage-locations"
    detected_by = ("invalid_storage_descriptors", "s3_paths_registered")

    def __init__(self, database: str, table: str) -> None:
        self.database = database
        self.table = table

    def describe(self) -> str:
        return (
            f"set SDS.LOCATION of {self.database}.{self.table} to NULL and of its partitions to ''"
        )

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            tbl_id = _table_id(conn, self.database, self.table)
            rows = conn.execute(
                'SELECT s."SD_ID", s."LOCATION" FROM "SDS" s WHERE s."SD_ID" IN ('
                ' SELECT "SD_ID" FROM "TBLS" WHERE "TBL_ID" = %(t)s'
                ' UNION SELECT "SD_ID" FROM "PARTITIONS" WHERE "TBL_ID" = %(t)s)',
                {"t": tbl_id},
            ).fetchall()
        return {"tbl_id": tbl_id, "locations": [[int(r[0]), r[1]] for r in rows]}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        tbl_id = undo["tbl_id"]
        with target.connect() as conn, conn.transaction():
            conn.execute(
                'UPDATE "SDS" SET "LOCATION" = NULL WHERE "SD_ID" = '
                '(SELECT "SD_ID" FROM "TBLS" WHERE "TBL_ID" = %s)',
                (tbl_id,),
            )
            conn.execute(
                'UPDATE "SDS" SET "LOCATION" = \'\' WHERE "SD_ID" IN '
                '(SELECT "SD_ID" FROM "PARTITIONS" WHERE "TBL_ID" = %s)',
                (tbl_id,),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "locations")
        changed = 0
        with target.connect() as conn, conn.transaction():
            for sd_id, location in undo["locations"]:
                cur = conn.execute(
                    'UPDATE "SDS" SET "LOCATION" = %s WHERE "SD_ID" = %s '
                    "AND coalesce(\"LOCATION\", '') = ''",
                    (location, sd_id),
                )
                changed += cur.rowcount
        return f"restored {changed} locations"


class OrphanPartitions(Fault[DatabaseTarget]):
    """Point a table's partitions at a table id that does not exist (FK triggers bypassed)."""

    kind = "orphan-partitions"
    detected_by = ("orphaned_partitions", "dangling_references")

    def __init__(self, database: str, table: str) -> None:
        self.database = database
        self.table = table

    def describe(self) -> str:
        return f"re-point the partitions of {self.database}.{self.table} at a missing TBL_ID"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            tbl_id = _table_id(conn, self.database, self.table)
            row = conn.execute('SELECT max("TBL_ID") + 100000 FROM "TBLS"').fetchone()
            assert row is not None
            ids = [
                r[0]
                for r in conn.execute(
                    'SELECT "PART_ID" FROM "PARTITIONS" WHERE "TBL_ID" = %s', (tbl_id,)
                ).fetchall()
            ]
        return {"tbl_id": tbl_id, "bogus_tbl_id": int(row[0]), "part_ids": ids}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn, conn.transaction():
            _bypass_fks(conn)
            conn.execute(
                'UPDATE "PARTITIONS" SET "TBL_ID" = %s WHERE "PART_ID" = ANY(%s)',
                (undo["bogus_tbl_id"], undo["part_ids"]),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "tbl_id", "bogus_tbl_id")
        with target.connect() as conn, conn.transaction():
            _bypass_fks(conn)
            cur = conn.execute(
                'UPDATE "PARTITIONS" SET "TBL_ID" = %s WHERE "TBL_ID" = %s',
                (undo["tbl_id"], undo["bogus_tbl_id"]),
            )
        return f"re-attached {cur.rowcount} partitions"


class SequenceBehind(Fault[DatabaseTarget]):
    """SEQUENCE_TABLE NEXT_VAL set below MAX(id): HMS's next insert of that class collides."""

    kind = "sequence-behind"
    detected_by = ("sequence_counters",)

    def __init__(
        self, model: str = "MPartition", table: str = "PARTITIONS", column: str = "PART_ID"
    ) -> None:
        self.model = model
        self.table = table
        self.column = column

    def describe(self) -> str:
        return f"set NEXT_VAL of {self.model} below MAX({self.table}.{self.column})"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        name = SEQUENCE_PREFIX + self.model
        with target.connect() as conn:
            row = conn.execute(
                'SELECT "NEXT_VAL" FROM "SEQUENCE_TABLE" WHERE "SEQUENCE_NAME" = %s', (name,)
            ).fetchone()
            if row is None:
                raise ValueError(f"SEQUENCE_TABLE has no {name}")
            max_query = sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
                sql.Identifier(self.column), sql.Identifier(self.table)
            )
            max_row = conn.execute(max_query).fetchone()
            assert max_row is not None
        return {"sequence": name, "next_val": int(row[0]), "behind": max(1, int(max_row[0]) // 2)}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn:
            conn.execute(
                'UPDATE "SEQUENCE_TABLE" SET "NEXT_VAL" = %s WHERE "SEQUENCE_NAME" = %s',
                (undo["behind"], undo["sequence"]),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "sequence", "next_val")
        with target.connect() as conn, conn.transaction():
            cur = conn.execute(
                'UPDATE "SEQUENCE_TABLE" SET "NEXT_VAL" = %s '
                'WHERE "SEQUENCE_NAME" = %s AND "NEXT_VAL" < %s',
                (undo["next_val"], undo["sequence"], undo["next_val"]),
            )
        return f"sequence {'restored' if cur.rowcount else 'already consistent'}"


class DropMetastoreSchema(Fault[DatabaseTarget]):
    """DROP SCHEMA public CASCADE: every metastore table gone. The undo record is a pg_dump
    taken just before, so the revert can rebuild the database if no restore did."""

    kind = "drop-metastore-schema"
    detected_by = ("metastore_accessible", "required_tables_present", "version_row")

    def describe(self) -> str:
        return "drop the whole metastore schema (DROP SCHEMA public CASCADE)"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        return {"snapshot": str(undo_dump(target, "schema"))}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        def drop(conn: psycopg.Connection[Any]) -> None:
            conn.execute("DROP SCHEMA public CASCADE")
            kill_point("mid-damage")
            conn.execute("CREATE SCHEMA public")

        # every table locked in turn while HMS keeps reading: a deadlock is retried
        with target.connect() as conn:
            write_despite_lock_conflicts(conn, drop)

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        with target.connect() as conn:
            missing = conn.execute(
                "SELECT count(*) FROM unnest(%s::text[]) t "
                "WHERE to_regclass(quote_ident(t)) IS NULL",
                (list(REQUIRED_TABLES),),
            ).fetchone()
        if not missing or not missing[0]:
            return "schema present; nothing to do"
        require(undo, "snapshot")
        snapshot = Path(undo["snapshot"])
        if not snapshot.is_file():
            raise RevertIncomplete(f"the undo dump {snapshot} is gone: nothing reverted")
        check_dump_readable(target.endpoint, snapshot)
        replace_database(target.endpoint, target.database, snapshot)
        return f"rebuilt {target.database} from {snapshot.name}"


class HalfDroppedPartitions(Fault[DatabaseTarget]):
    """Partitions deleted with their key values and params, their storage descriptors left
    behind: a DROP PARTITION that died half-way. The data stays in S3."""

    kind = "half-dropped-partitions"
    detected_by = ("s3_paths_registered", "leaked_storage_descriptors")
    CHILDREN = ("PARTITION_KEY_VALS", "PARTITION_PARAMS", "PART_COL_STATS")

    def __init__(self, database: str, table: str, count: int = 5) -> None:
        self.database = database
        self.table = table
        self.count = count

    def describe(self) -> str:
        return (
            f"drop {self.count} partitions of {self.database}.{self.table} half-way "
            "(rows gone, storage descriptors leaked)"
        )

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn, conn.transaction():  # one snapshot of every table
            tbl_id = _table_id(conn, self.database, self.table)
            ids = [
                r[0]
                for r in conn.execute(
                    'SELECT "PART_ID" FROM "PARTITIONS" WHERE "TBL_ID" = %s ORDER BY "PART_NAME" '
                    "LIMIT %s",
                    (tbl_id, self.count),
                ).fetchall()
            ]
            undo: dict[str, Any] = {"part_ids": ids}
            for table in (*self.CHILDREN, "PARTITIONS"):
                rows = conn.execute(
                    sql.SQL(
                        'SELECT row_to_json(t)::text FROM {} t WHERE "PART_ID" = ANY(%s)'
                    ).format(sql.Identifier(table)),
                    (ids,),
                ).fetchall()
                undo[table] = [json.loads(r[0]) for r in rows]
        return undo

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn, conn.transaction():
            for table in (*self.CHILDREN, "PARTITIONS"):
                conn.execute(
                    sql.SQL('DELETE FROM {} WHERE "PART_ID" = ANY(%s)').format(
                        sql.Identifier(table)
                    ),
                    (undo["part_ids"],),
                )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        """Put back the partitions whose name is still free (a repair may have re-added them
        under new ids). Their storage descriptors were never deleted by the fault; if a repair
        removed them as leaked meanwhile, the revert says so."""
        require(undo, "PARTITIONS")
        restored = 0
        with target.connect() as conn, conn.transaction():
            _bypass_fks(conn)
            back = conn.execute(
                'INSERT INTO "PARTITIONS" SELECT p.* '
                'FROM json_populate_recordset(NULL::"PARTITIONS", %s) p '
                'WHERE NOT EXISTS (SELECT 1 FROM "PARTITIONS" o WHERE o."TBL_ID" = p."TBL_ID" '
                'AND o."PART_NAME" = p."PART_NAME") '
                'ON CONFLICT DO NOTHING RETURNING "PART_ID", "SD_ID"',
                (json.dumps(undo.get("PARTITIONS", [])),),
            ).fetchall()
            ids = [r[0] for r in back]
            restored = len(ids)
            for table in self.CHILDREN:
                rows = [r for r in undo.get(table, []) if r["PART_ID"] in ids]
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, %s) "
                        "ON CONFLICT DO NOTHING"
                    ).format(t=sql.Identifier(table)),
                    (json.dumps(rows),),
                )
            missing_sd = conn.execute(
                'SELECT count(*) FROM "PARTITIONS" p WHERE p."PART_ID" = ANY(%s) '
                'AND NOT EXISTS (SELECT 1 FROM "SDS" s WHERE s."SD_ID" = p."SD_ID")',
                (ids,),
            ).fetchone()
        if missing_sd and missing_sd[0]:
            return (
                f"re-inserted {restored} partitions; "
                f"{missing_sd[0]} of their storage descriptors were removed meanwhile"
            )
        return f"re-inserted {restored} of {len(undo.get('PARTITIONS', []))} partitions"


class WrongPartitionNames(Fault[DatabaseTarget]):
    """PART_NAME rewritten by a foreign tool (upper-cased keys): the names no longer say what
    the key values hold, and partition lookups by name miss."""

    kind = "wrong-partition-names"
    detected_by = ("part_name_matches_key_vals",)

    def __init__(self, database: str, table: str, count: int = 3) -> None:
        self.database = database
        self.table = table
        self.count = count

    def describe(self) -> str:
        return f"rewrite PART_NAME of {self.count} partitions of {self.database}.{self.table}"

    def capture(self, target: DatabaseTarget) -> dict[str, Any]:
        with target.connect() as conn:
            tbl_id = _table_id(conn, self.database, self.table)
            rows = conn.execute(
                'SELECT "PART_ID", "PART_NAME" FROM "PARTITIONS" WHERE "TBL_ID" = %s '
                'ORDER BY "PART_NAME" DESC LIMIT %s',
                (tbl_id, self.count),
            ).fetchall()
        return {"names": [[r[0], r[1]] for r in rows]}

    def apply(self, target: DatabaseTarget, undo: dict[str, Any]) -> None:
        with target.connect() as conn, conn.transaction():
            conn.execute(
                'UPDATE "PARTITIONS" SET "PART_NAME" = upper("PART_NAME") '
                'WHERE "PART_ID" = ANY(%s)',
                ([part_id for part_id, _name in undo["names"]],),
            )

    def revert(self, target: DatabaseTarget, undo: dict[str, Any]) -> str:
        require(undo, "names")
        changed = 0
        with target.connect() as conn, conn.transaction():
            for part_id, name in undo["names"]:
                changed += conn.execute(
                    'UPDATE "PARTITIONS" SET "PART_NAME" = %s WHERE "PART_ID" = %s '
                    'AND "PART_NAME" <> %s',
                    (name, part_id, name),
                ).rowcount
        return f"restored {changed} partition names"


METASTORE_FAULTS: tuple[type[Fault[DatabaseTarget]], ...] = (
    DeleteDatabaseTables,
    BlankStorageLocations,
    OrphanPartitions,
    SequenceBehind,
    DropMetastoreSchema,
    HalfDroppedPartitions,
    WrongPartitionNames,
)
