"""One Hive table's metadata as rows: read from a metastore (the live one or a restored
backup), removed from one, and written into one with fresh ids from SEQUENCE_TABLE, so ids
stay unique and the sequences consistent. Also a per-table logical fingerprint, free of ids,
to show that every other table was left untouched."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from drtests.metastore.changes import record_event
from drtests.metastore.repair import _allocate, delete_storage_descriptors
from drtests.postgres import public_tables

# schema table → (id column rewritten from its own model, {column: model of the id it holds})
ID_COLUMNS: dict[str, tuple[str | None, dict[str, str]]] = {
    "CDS": ("CD_ID", {"CD_ID": "MColumnDescriptor"}),
    "COLUMNS_V2": (None, {"CD_ID": "MColumnDescriptor"}),
    "SERDES": ("SERDE_ID", {"SERDE_ID": "MSerDeInfo"}),
    "SERDE_PARAMS": (None, {"SERDE_ID": "MSerDeInfo"}),
    "SDS": (
        "SD_ID",
        {"SD_ID": "MStorageDescriptor", "SERDE_ID": "MSerDeInfo", "CD_ID": "MColumnDescriptor"},
    ),
    "SD_PARAMS": (None, {"SD_ID": "MStorageDescriptor"}),
    "BUCKETING_COLS": (None, {"SD_ID": "MStorageDescriptor"}),
    "SORT_COLS": (None, {"SD_ID": "MStorageDescriptor"}),
    "TBLS": ("TBL_ID", {"TBL_ID": "MTable", "SD_ID": "MStorageDescriptor", "DB_ID": "MDatabase"}),
    "TABLE_PARAMS": (None, {"TBL_ID": "MTable"}),
    "PARTITION_KEYS": (None, {"TBL_ID": "MTable"}),
    "TAB_COL_STATS": ("CS_ID", {"CS_ID": "MTableColumnStatistics", "TBL_ID": "MTable"}),
    "TBL_PRIVS": ("TBL_GRANT_ID", {"TBL_GRANT_ID": "MTablePrivilege", "TBL_ID": "MTable"}),
    "PARTITIONS": (
        "PART_ID",
        {"PART_ID": "MPartition", "SD_ID": "MStorageDescriptor", "TBL_ID": "MTable"},
    ),
    "PARTITION_KEY_VALS": (None, {"PART_ID": "MPartition"}),
    "PARTITION_PARAMS": (None, {"PART_ID": "MPartition"}),
    "PART_COL_STATS": ("CS_ID", {"CS_ID": "MPartitionColumnStatistics", "PART_ID": "MPartition"}),
}
INSERT_ORDER = tuple(ID_COLUMNS)  # parents before children
TABLE_LEVEL = (
    "CDS",
    "COLUMNS_V2",
    "SERDES",
    "SERDE_PARAMS",
    "SDS",
    "SD_PARAMS",
    "BUCKETING_COLS",
    "SORT_COLS",
    "TBLS",
    "TABLE_PARAMS",
    "PARTITION_KEYS",
)


@dataclass
class TableMetadata:
    database: str
    name: str
    tbl_id: int
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def location(self) -> str | None:
        sd_id = self.rows["TBLS"][0]["SD_ID"]
        return next((s["LOCATION"] for s in self.rows.get("SDS", []) if s["SD_ID"] == sd_id), None)

    def count(self, table: str) -> int:
        return len(self.rows.get(table, []))


def _select(
    conn: psycopg.Connection[Any], table: str, column: str, ids: list[int]
) -> list[dict[str, Any]]:
    if not ids:
        return []
    query = sql.SQL("SELECT row_to_json(t)::text FROM {} t WHERE {} = ANY(%s)").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    return [json.loads(r[0]) for r in conn.execute(query, (ids,)).fetchall()]


def read_table(conn: psycopg.Connection[Any], database: str, table: str) -> TableMetadata:
    """Every row that belongs to ``database.table`` (DESCRIBE EXTENDED, and all the rest)."""
    row = conn.execute(
        'SELECT row_to_json(t)::text FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        'WHERE d."NAME" = %s AND t."TBL_NAME" = %s',
        (database, table),
    ).fetchone()
    if row is None:
        raise LookupError(f"{database}.{table} is not in this metastore")
    tbl = json.loads(row[0])
    present = public_tables(conn)
    meta = TableMetadata(database, table, int(tbl["TBL_ID"]), {"TBLS": [tbl]})
    by_tbl = [meta.tbl_id]
    for name in ("TABLE_PARAMS", "PARTITION_KEYS", "TAB_COL_STATS", "TBL_PRIVS", "PARTITIONS"):
        if name in present:
            meta.rows[name] = _select(conn, name, "TBL_ID", by_tbl)
    parts = [p["PART_ID"] for p in meta.rows.get("PARTITIONS", [])]
    for name in ("PARTITION_KEY_VALS", "PARTITION_PARAMS", "PART_COL_STATS"):
        if name in present:
            meta.rows[name] = _select(conn, name, "PART_ID", parts)
    sds = [x for x in [tbl["SD_ID"], *(p["SD_ID"] for p in meta.rows.get("PARTITIONS", []))] if x]
    meta.rows["SDS"] = _select(conn, "SDS", "SD_ID", sds)
    for name in ("SD_PARAMS", "BUCKETING_COLS", "SORT_COLS"):
        if name in present:
            meta.rows[name] = _select(conn, name, "SD_ID", sds)
    serdes = sorted({s["SERDE_ID"] for s in meta.rows["SDS"] if s["SERDE_ID"] is not None})
    meta.rows["SERDES"] = _select(conn, "SERDES", "SERDE_ID", serdes)
    meta.rows["SERDE_PARAMS"] = _select(conn, "SERDE_PARAMS", "SERDE_ID", serdes)
    cds = sorted({s["CD_ID"] for s in meta.rows["SDS"] if s["CD_ID"] is not None})
    meta.rows["CDS"] = _select(conn, "CDS", "CD_ID", cds)
    meta.rows["COLUMNS_V2"] = _select(conn, "COLUMNS_V2", "CD_ID", cds)
    return meta


def remove_table(
    conn: psycopg.Connection[Any], tbl_ids: list[int], known_sds: list[int] | None = None
) -> int:
    """Delete a table's rows by TBL_ID — including partitions and params left dangling after
    its TBLS row vanished. ``known_sds`` (the table's storage descriptors as a backup knows
    them) are removed too when nothing references them any more: ids are never reused, so
    such a row can only be this table's leftover. Column descriptors in use are kept."""
    parts = [
        r[0]
        for r in conn.execute(
            'SELECT "PART_ID" FROM "PARTITIONS" WHERE "TBL_ID" = ANY(%s)', (tbl_ids,)
        ).fetchall()
    ]
    sds = [
        r[0]
        for r in conn.execute(
            'SELECT "SD_ID" FROM "TBLS" WHERE "TBL_ID" = ANY(%(t)s) AND "SD_ID" IS NOT NULL UNION '
            'SELECT "SD_ID" FROM "PARTITIONS" WHERE "TBL_ID" = ANY(%(t)s) AND "SD_ID" IS NOT NULL',
            {"t": tbl_ids},
        ).fetchall()
    ]
    if known_sds:
        sds += [
            r[0]
            for r in conn.execute(
                'SELECT s."SD_ID" FROM "SDS" s WHERE s."SD_ID" = ANY(%(k)s) '
                'AND s."SD_ID" <> ALL(%(s)s) AND NOT EXISTS (SELECT 1 FROM "TBLS" t '
                'WHERE t."SD_ID" = s."SD_ID" AND t."TBL_ID" <> ALL(%(t)s)) '
                'AND NOT EXISTS (SELECT 1 FROM "PARTITIONS" p '
                'WHERE p."SD_ID" = s."SD_ID" AND p."TBL_ID" <> ALL(%(t)s))',
                {"k": known_sds, "s": sds, "t": tbl_ids},
            ).fetchall()
        ]
    cds = [
        r[0]
        for r in conn.execute(
            'SELECT DISTINCT "CD_ID" FROM "SDS" WHERE "SD_ID" = ANY(%s) AND "CD_ID" IS NOT NULL',
            (sds,),
        ).fetchall()
    ]
    present = public_tables(conn)
    for name in ("PART_COL_STATS", "PARTITION_PARAMS", "PARTITION_KEY_VALS"):
        if name in present:
            conn.execute(
                sql.SQL('DELETE FROM {} WHERE "PART_ID" = ANY(%s)').format(sql.Identifier(name)),
                (parts,),
            )
    conn.execute('DELETE FROM "PARTITIONS" WHERE "TBL_ID" = ANY(%s)', (tbl_ids,))
    for name in ("TAB_COL_STATS", "TBL_PRIVS", "PARTITION_KEYS", "TABLE_PARAMS"):
        if name in present:
            conn.execute(
                sql.SQL('DELETE FROM {} WHERE "TBL_ID" = ANY(%s)').format(sql.Identifier(name)),
                (tbl_ids,),
            )
    removed = conn.execute('DELETE FROM "TBLS" WHERE "TBL_ID" = ANY(%s)', (tbl_ids,)).rowcount
    delete_storage_descriptors(conn, sds)
    conn.execute(
        'DELETE FROM "COLUMNS_V2" WHERE "CD_ID" = ANY(%(c)s) AND NOT EXISTS '
        '(SELECT 1 FROM "SDS" s WHERE s."CD_ID" = "COLUMNS_V2"."CD_ID")',
        {"c": cds},
    )
    conn.execute(
        'DELETE FROM "CDS" WHERE "CD_ID" = ANY(%(c)s) AND NOT EXISTS '
        '(SELECT 1 FROM "SDS" s WHERE s."CD_ID" = "CDS"."CD_ID")',
        {"c": cds},
    )
    return removed


def insert_table(
    conn: psycopg.Connection[Any], meta: TableMetadata, only: tuple[str, ...] = INSERT_ORDER
) -> int:
    """Write ``meta`` with new ids (one allocation per model class); returns the new TBL_ID."""
    present = public_tables(conn)
    db = conn.execute('SELECT "DB_ID" FROM "DBS" WHERE "NAME" = %s', (meta.database,)).fetchone()
    if db is None:
        raise LookupError(f"database {meta.database} does not exist: restore it first (Option 1)")
    mapping: dict[str, dict[int, int]] = defaultdict(dict)
    mapping["MDatabase"][meta.rows["TBLS"][0]["DB_ID"]] = int(db[0])
    for table in only:
        own, columns = ID_COLUMNS[table]
        rows = meta.rows.get(table, [])
        if own is None or not rows or table not in present:
            continue
        model = columns[own]
        first = _allocate(conn, model, len(rows))
        for offset, row in enumerate(rows):
            mapping[model][row[own]] = first + offset
    for table in only:
        rows = meta.rows.get(table, [])
        if not rows or table not in present:
            continue
        _, columns = ID_COLUMNS[table]
        rewritten = [
            {
                **row,
                **{
                    c: mapping[m].get(row[c], row[c]) if row.get(c) is not None else None
                    for c, m in columns.items()
                },
            }
            for row in rows
        ]
        conn.execute(
            sql.SQL("INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, %s)").format(
                t=sql.Identifier(table)
            ),
            (json.dumps(rewritten),),
        )
    new_id = mapping["MTable"][meta.tbl_id]
    record_event(conn, "CREATE_TABLE", meta.database, meta.name, {"restoredFrom": meta.tbl_id})
    return new_id


def table_fingerprints(
    conn: psycopg.Connection[Any], *, with_params: bool = True
) -> dict[str, str]:
    """db.table → MD5 of its logical content, free of ids: type, owner, view text, storage
    (location, formats, serde), columns, partition keys, partitions (name, location) and,
    with ``with_params``, table and partition parameters."""
    kv = "string_agg({a}.\"PARAM_KEY\" || '=' || coalesce({a}.\"PARAM_VALUE\", ''), ',' "
    params = (
        f"(SELECT {kv.format(a='tp')}"
        'ORDER BY tp."PARAM_KEY") FROM "TABLE_PARAMS" tp WHERE tp."TBL_ID" = t."TBL_ID")'
        if with_params
        else "''"
    )
    part_params = (
        f"coalesce((SELECT {kv.format(a='pp')}"
        'ORDER BY pp."PARAM_KEY") FROM "PARTITION_PARAMS" pp '
        'WHERE pp."PART_ID" = p."PART_ID"), \'\')'
        if with_params
        else "''"
    )
    rows = conn.execute(
        'SELECT d."NAME" || \'.\' || t."TBL_NAME", md5(concat_ws(\'|\', t."TBL_TYPE", t."OWNER", '
        't."VIEW_ORIGINAL_TEXT", s."LOCATION", s."INPUT_FORMAT", s."OUTPUT_FORMAT", se."SLIB", '
        "(SELECT string_agg(c.\"COLUMN_NAME\" || ':' || coalesce(c.\"TYPE_NAME\", ''), ',' "
        'ORDER BY c."INTEGER_IDX") FROM "COLUMNS_V2" c WHERE c."CD_ID" = s."CD_ID"), '
        "(SELECT string_agg(k.\"PKEY_NAME\" || ':' || k.\"PKEY_TYPE\", ',' "
        'ORDER BY k."INTEGER_IDX") FROM "PARTITION_KEYS" k WHERE k."TBL_ID" = t."TBL_ID"), '
        f"{params}, "
        "(SELECT string_agg(p.\"PART_NAME\" || '@' || coalesce(ps.\"LOCATION\", '') || '#' || "
        f'{part_params}, \';\' ORDER BY p."PART_NAME") FROM "PARTITIONS" p '
        'LEFT JOIN "SDS" ps ON ps."SD_ID" = p."SD_ID" WHERE p."TBL_ID" = t."TBL_ID"))) '
        'FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
        'LEFT JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
        'LEFT JOIN "SERDES" se ON se."SERDE_ID" = s."SERDE_ID"'
    ).fetchall()
    return {str(name): str(digest) for name, digest in rows}
