"""Names of the objects HMS serves (database, table, partition, index, function) that hold
given metastore rows, so a finding about a row says which object a client will miss.

Rows are named through the model: a storage descriptor by the table, partition or index
that uses it, a column descriptor or serde by the storage descriptors that use them, a
column or parameter by what it is part of. A row whose object is gone is named by its id.
Used for the few rows a check reports, never to scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import psycopg

from drtests.metastore.model import Model
from drtests.postgres import public_tables

#: the id column of each metastore table whose rows have one
KEYS = {
    "DBS": "DB_ID",
    "TBLS": "TBL_ID",
    "PARTITIONS": "PART_ID",
    "IDXS": "INDEX_ID",
    "FUNCS": "FUNC_ID",
    "SDS": "SD_ID",
    "CDS": "CD_ID",
    "SERDES": "SERDE_ID",
    "SKEWED_STRING_LIST": "STRING_LIST_ID",
    "TAB_COL_STATS": "CS_ID",
    "PART_COL_STATS": "CS_ID",
    "KEY_CONSTRAINTS": "CONSTRAINT_NAME",
    "ROLES": "ROLE_ID",
}

_DB = "coalesce(d.\"NAME\", '<DB_ID ' || coalesce(t.\"DB_ID\"::text, 'NULL') || '>')"
_TBL = f"{_DB} || '.' || t.\"TBL_NAME\""
#: tables whose rows are served objects: the SQL naming a row ``x`` of them
SERVED = {
    "DBS": ('SELECT x."DB_ID", \'database \' || x."NAME" FROM "DBS" x', 'x."DB_ID"'),
    "TBLS": (
        f'SELECT x."TBL_ID", \'table \' || {_TBL} FROM "TBLS" x CROSS JOIN LATERAL '
        '(SELECT x."DB_ID", x."TBL_NAME") t LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"',
        'x."TBL_ID"',
    ),
    "PARTITIONS": (
        f"SELECT x.\"PART_ID\", 'partition ' || coalesce({_TBL}, "
        "'<TBL_ID ' || coalesce(x.\"TBL_ID\"::text, 'NULL') || '>') || '/' || "
        'coalesce(x."PART_NAME", \'?\') FROM "PARTITIONS" x '
        'LEFT JOIN "TBLS" t ON t."TBL_ID" = x."TBL_ID" LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"',
        'x."PART_ID"',
    ),
    "IDXS": (
        f"SELECT x.\"INDEX_ID\", 'index ' || coalesce({_TBL}, "
        "'<TBL_ID ' || coalesce(x.\"ORIG_TBL_ID\"::text, 'NULL') || '>') || '.' || "
        'x."INDEX_NAME" FROM "IDXS" x '
        'LEFT JOIN "TBLS" t ON t."TBL_ID" = x."ORIG_TBL_ID" '
        'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID"',
        'x."INDEX_ID"',
    ),
    "FUNCS": (
        "SELECT x.\"FUNC_ID\", 'function ' || coalesce(d.\"NAME\", '<DB_ID ' || "
        "coalesce(x.\"DB_ID\"::text, 'NULL') || '>') || '.' || x.\"FUNC_NAME\" FROM \"FUNCS\" x "
        'LEFT JOIN "DBS" d ON d."DB_ID" = x."DB_ID"',
        'x."FUNC_ID"',
    ),
    "TAB_COL_STATS": (
        'SELECT x."CS_ID", \'table \' || x."DB_NAME" || \'.\' || x."TABLE_NAME" || '
        "' (statistics of ' || x.\"COLUMN_NAME\" || ')' FROM \"TAB_COL_STATS\" x",
        'x."CS_ID"',
    ),
    "PART_COL_STATS": (
        "SELECT x.\"CS_ID\", 'partition ' || x.\"DB_NAME\" || '.' || x.\"TABLE_NAME\" || '/' || "
        "x.\"PARTITION_NAME\" || ' (statistics of ' || x.\"COLUMN_NAME\" || ')' "
        'FROM "PART_COL_STATS" x',
        'x."CS_ID"',
    ),
    "KEY_CONSTRAINTS": (
        'SELECT x."CONSTRAINT_NAME", \'constraint \' || x."CONSTRAINT_NAME" '
        'FROM "KEY_CONSTRAINTS" x',
        'x."CONSTRAINT_NAME"',
    ),
}

Names = dict[Any, list[str]]


def identity(model: Model, table: str) -> tuple[str, str, str] | None:
    """How a row of ``table`` is identified: (table, column of the row, column it names)."""
    if table in KEYS:
        return table, KEYS[table], KEYS[table]
    for relation in model.of(table):
        if relation.part_of:
            return relation.parent, relation.column, relation.parent_column
    return None


def name_rows(
    conn: psycopg.Connection[Any], model: Model, table: str, column: str, values: Iterable[Any]
) -> Names:
    """For each value, the served objects holding the rows of ``table`` whose ``column``
    has it (the row's id when the object is gone)."""
    wanted = [v for v in dict.fromkeys(values) if v is not None]
    names: Names = defaultdict(list)
    if not wanted:
        return names
    _name(conn, model, table, column, wanted, names, depth=0)
    for value in wanted:
        if not names.get(value):
            names[value] = [f"{table}.{column} {value}"]
    return names


def _name(
    conn: psycopg.Connection[Any],
    model: Model,
    table: str,
    column: str,
    values: list[Any],
    names: Names,
    depth: int,
) -> None:
    if depth > 4:
        return
    key = KEYS.get(table)
    if column == key and table in SERVED:
        query, key_sql = SERVED[table]
        for value, name in conn.execute(
            f"{query} WHERE {key_sql} = ANY(%s)".encode(),
            (values,),
        ).fetchall():
            names[value].append(str(name))
        for value in values:
            if not names.get(value):
                names[value].append(f"{column} {value}")
        return
    if column == key:  # a shared row: named by what uses it
        for relation in model.users(table):
            if relation.parent_column != column:
                continue
            found = identity(model, relation.child)
            if found is None:
                continue
            id_table, id_column, id_names = found
            rows = conn.execute(
                f'SELECT c."{relation.column}", c."{id_column}" FROM "{relation.child}" c '
                f'WHERE c."{relation.column}" = ANY(%s)'.encode(),
                (values,),
            ).fetchall()
            if not rows:
                continue
            inner: Names = defaultdict(list)
            _name(conn, model, id_table, id_names, [r[1] for r in rows], inner, depth + 1)
            for value, child_id in rows:
                names[value].extend(n for n in inner.get(child_id, []) if n not in names[value])
        return
    found = identity(model, table)
    if found is None:
        return
    id_table, id_column, id_names = found
    rows = conn.execute(
        f'SELECT c."{column}", c."{id_column}" FROM "{table}" c '
        f'WHERE c."{column}" = ANY(%s)'.encode(),
        (values,),
    ).fetchall()
    inner = defaultdict(list)
    _name(conn, model, id_table, id_names, [r[1] for r in rows], inner, depth + 1)
    for value, row_id in rows:
        names[value].extend(n for n in inner.get(row_id, []) if n not in names[value])


def _agg(present: set[str], table: str, expression: str, where: str, order: str) -> str:
    if table not in present:
        return "''"
    return (
        f"coalesce((SELECT string_agg({expression}, ',' ORDER BY {order}) "
        f"FROM \"{table}\" a WHERE {where}), '')"
    )


def _partition_sets(conn: psycopg.Connection[Any], present: set[str]) -> dict[str, str]:
    """Per table, its partitions as one order-free digest (the sum of a 64-bit hash of each
    partition's name, location, formats, serde and columns) and their count: a partition
    moved, renamed, re-pointed at other columns or another serde changes it, at a cost
    linear in the partitions and no memory per partition."""
    if not {"PARTITIONS", "SDS", "SERDES", "COLUMNS_V2"} <= present:
        return {}
    rows = conn.execute(
        'WITH cd AS (SELECT "CD_ID", md5(string_agg("COLUMN_NAME" || \':\' || "TYPE_NAME", '
        '\',\' ORDER BY "INTEGER_IDX")) AS h FROM "COLUMNS_V2" GROUP BY 1) '
        "SELECT 'partitions of table ' || coalesce(d.\"NAME\", '?') || '.' || "
        "coalesce(t.\"TBL_NAME\", '?'), count(*), sum(hashtextextended(concat_ws('|', "
        'p."PART_NAME", s."LOCATION", s."INPUT_FORMAT", s."OUTPUT_FORMAT", r."SLIB", cd.h), 0)) '
        'FROM "PARTITIONS" p LEFT JOIN "TBLS" t ON t."TBL_ID" = p."TBL_ID" '
        'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" LEFT JOIN "SDS" s ON s."SD_ID" = p."SD_ID" '
        'LEFT JOIN "SERDES" r ON r."SERDE_ID" = s."SERDE_ID" '
        'LEFT JOIN cd ON cd."CD_ID" = s."CD_ID" GROUP BY 1'
    ).fetchall()
    return {str(name): f"count={count} | digest={digest}" for name, count, digest in rows}


def definitions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Each database's, table's, index's and function's definition as a client reads it,
    free of ids: what a baseline keeps so a changed object is named, not only counted."""
    present = public_tables(conn)
    columns = _agg(
        present,
        "COLUMNS_V2",
        'a."COLUMN_NAME" || \':\' || a."TYPE_NAME"',
        'a."CD_ID" = s."CD_ID"',
        'a."INTEGER_IDX"',
    )
    keys = _agg(
        present,
        "PARTITION_KEYS",
        'a."PKEY_NAME" || \':\' || a."PKEY_TYPE"',
        'a."TBL_ID" = t."TBL_ID"',
        'a."INTEGER_IDX"',
    )
    buckets = _agg(
        present, "BUCKETING_COLS", 'a."BUCKET_COL_NAME"', 'a."SD_ID" = s."SD_ID"', 'a."INTEGER_IDX"'
    )
    serde_params = _agg(
        present,
        "SERDE_PARAMS",
        "a.\"PARAM_KEY\" || '=' || coalesce(a.\"PARAM_VALUE\", '')",
        'a."SERDE_ID" = r."SERDE_ID"',
        'a."PARAM_KEY"',
    )
    out: dict[str, str] = {}
    for name, location in conn.execute('SELECT "NAME", "DB_LOCATION_URI" FROM "DBS"').fetchall():
        out[f"database {name}"] = f"location={location}"
    rows = conn.execute(
        (
            "SELECT 'table ' || coalesce(d.\"NAME\", '?') || '.' || t.\"TBL_NAME\", "
            "concat_ws(' | ', 'type=' || t.\"TBL_TYPE\", 'location=' || s.\"LOCATION\", "
            f"'columns=' || {columns}, 'partition_keys=' || {keys}, "
            "'serde=' || r.\"SLIB\", 'input=' || s.\"INPUT_FORMAT\", "
            "'output=' || s.\"OUTPUT_FORMAT\", "
            f"'serde_params=' || md5({serde_params}), "
            "'view=' || md5(coalesce(t.\"VIEW_EXPANDED_TEXT\", '')), "
            f"'buckets=' || s.\"NUM_BUCKETS\" || ':' || {buckets}) "
            'FROM "TBLS" t LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
            'LEFT JOIN "SDS" s ON s."SD_ID" = t."SD_ID" '
            'LEFT JOIN "SERDES" r ON r."SERDE_ID" = s."SERDE_ID"'
        ).encode()
    ).fetchall()
    out.update((str(n), str(v)) for n, v in rows)
    out.update(_partition_sets(conn, present))
    if "FUNCS" in present:
        for name, klass in conn.execute(
            "SELECT 'function ' || coalesce(d.\"NAME\", '?') || '.' || f.\"FUNC_NAME\", "
            'f."CLASS_NAME" FROM "FUNCS" f LEFT JOIN "DBS" d ON d."DB_ID" = f."DB_ID"'
        ).fetchall():
            out[str(name)] = f"class={klass}"
    if "IDXS" in present:
        for name, table in conn.execute(
            "SELECT 'index ' || coalesce(d.\"NAME\", '?') || '.' || coalesce(t.\"TBL_NAME\", '?') "
            '|| \'.\' || i."INDEX_NAME", coalesce(x."TBL_NAME", \'?\') FROM "IDXS" i '
            'LEFT JOIN "TBLS" t ON t."TBL_ID" = i."ORIG_TBL_ID" '
            'LEFT JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
            'LEFT JOIN "TBLS" x ON x."TBL_ID" = i."INDEX_TBL_ID"'
        ).fetchall():
            out[str(name)] = f"index_table={table}"
    return out
